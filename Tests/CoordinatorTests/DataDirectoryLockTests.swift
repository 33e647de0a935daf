import Foundation
import RondoTestSupport
import Testing

@testable import Coordinator

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DataDirectoryLockTests {
    @Test func oneHolderAtATimeAndANewHolderClearsTheOldAddress() throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first: DataDirectoryLock? = try DataDirectoryLock.tryAcquire(directory: directory)
        #expect(first != nil)
        #expect(try DataDirectoryLock.tryAcquire(directory: directory) == nil, "held: a second holder is refused")
        try first?.publish(.init(url: "http://127.0.0.1:8470", pid: 42))
        #expect(DataDirectoryLock.readAddress(directory: directory) == .init(url: "http://127.0.0.1:8470", pid: 42))

        first = nil  // released, as when the process exits
        let second = try #require(try DataDirectoryLock.tryAcquire(directory: directory))
        #expect(
            DataDirectoryLock.readAddress(directory: directory) == nil,
            "the new holder cleared the old address: no admin token goes to a port the old coordinator left")
        withExtendedLifetime(second) {}
    }

    @Test func onlyAnHTTPAddressInThisUsersRegularFileIsBelieved() throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + DataDirectoryLock.fileName
        for contents in [#"{"url":"file:///etc/passwd","pid":1}"#, "garbage", ""] {
            FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
            #expect(DataDirectoryLock.readAddress(directory: directory) == nil, "\(contents)")
        }
        FileManager.default.createFile(atPath: path, contents: Data(#"{"url":"https://rondo:8470","pid":1}"#.utf8))
        #expect(DataDirectoryLock.readAddress(directory: directory)?.url == "https://rondo:8470")
        if geteuid() == 0 {
            chown(path, 65534, 65534)
            #expect(DataDirectoryLock.readAddress(directory: directory) == nil, "another user's file is not believed")
            #expect(throws: DataDirectoryError.self) { try DataDirectoryLock.tryAcquire(directory: directory) }
        }
        try FileManager.default.removeItem(atPath: path)
        symlink(directory + "/elsewhere", path)
        #expect(throws: DataDirectoryError.self, "a symlinked lock file is refused") {
            try DataDirectoryLock.tryAcquire(directory: directory)
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/elsewhere"))
    }
}
