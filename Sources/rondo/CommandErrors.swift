import Coordinator
import Foundation
import ModelManager

/// A command that cannot be carried out: one line on stderr (or a JSON error with `--json`), exit status 1.
/// Not a usage error: no usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    /// A stable code for scripts (`--json`), like the admin API's error codes.
    var code: String
    init(_ description: String, code: String = "failed") {
        self.description = description
        self.code = code
    }
}

/// The running coordinator refused an operator command.
struct AdminAPIError: Error, CustomStringConvertible {
    var status: Int
    var code: String
    var message: String
    var description: String { "the coordinator refused: \(status) \(code): \(message)" }
}

/// How `rondo` ends on an error thrown while a command runs (parsing errors keep ArgumentParser's usage text
/// and exit status 64).
enum CommandErrorReport {
    /// `--json` output is for programs: then errors are JSON on stdout too, `{"error": {"code", "message"}}`.
    static var wantsJSON: Bool { CommandLine.arguments.dropFirst().contains("--json") }

    /// Prints the error and returns the exit status, 1. (ArgumentParser's own errors, usage problems included,
    /// keep its output and status.)
    static func report(_ error: any Error) -> Int32 {
        let (code, message) = describe(error)
        if wantsJSON {
            let body = ["error": ["code": code, "message": message]]
            if let data = try? JSONStyle.encoder().encode(body) {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
        } else {
            FileHandle.standardError.write(Data("rondo: error: \(message)\n".utf8))
        }
        return 1
    }

    private static func describe(_ error: any Error) -> (code: String, message: String) {
        switch error {
        case let error as CommandFailure: (error.code, error.description)
        case let error as AdminAPIError: (error.code, wantsJSON ? error.message : error.description)
        // The admin API's one mapping names store errors, so a command says `unknown_checkpoint` whether it read
        // the store or asked the coordinator.
        case let error as CheckpointStoreError: (APIError(from: error).code.rawValue, error.message)
        default: ("failed", "\(error)")
        }
    }
}
