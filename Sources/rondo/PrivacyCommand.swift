import ArgumentParser
import FederationCore
import Foundation

/// `rondo privacy epsilon`: the (ε, δ) the RDP accountant gives a plan of rounds, before any is run; what an
/// operator sizes `--dp-noise-multiplier` and `--dp-epsilon-budget` with.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy", abstract: "Differential-privacy planning.", subcommands: [EpsilonCommand.self])

    struct EpsilonCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "epsilon",
            abstract: "Epsilon after ROUNDS rounds of DP-FedAvg with sampling rate q and noise multiplier z.")

        @Option(help: "The noise multiplier z.")
        var noiseMultiplier: Double
        @Option(help: "The sampling rate q (selected clients / population); 1 assumes no amplification.")
        var samplingRate = 1.0
        @Option(help: "Rounds.")
        var rounds: Int
        @Option(help: "The delta.")
        var delta = 1e-5
        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            guard noiseMultiplier >= 0, noiseMultiplier.isFinite else {
                throw ValidationError("--noise-multiplier must be 0 or more")
            }
            guard (0...1).contains(samplingRate) else { throw ValidationError("--sampling-rate must be in [0, 1]") }
            guard rounds >= 0 else { throw ValidationError("--rounds must be 0 or more") }
            guard delta > 0, delta < 1 else { throw ValidationError("--delta must be in (0, 1)") }
        }

        func run() throws {
            let epsilon = RDPAccountant().composing(
                samplingRate: samplingRate, noiseMultiplier: noiseMultiplier, rounds: rounds
            ).epsilon(delta: delta)
            if json {
                // JSON has no infinity: an unbounded epsilon is null.
                let value = epsilon.isFinite ? String(epsilon) : "null"
                print(
                    #"{"epsilon": \#(value), "delta": \#(delta), "rounds": \#(rounds), "sampling_rate": \#(samplingRate), "noise_multiplier": \#(noiseMultiplier)}"#
                )
            } else {
                print(epsilon.isFinite ? String(format: "epsilon = %.6g at delta = %g", epsilon, delta) : "unbounded")
            }
        }
    }
}
