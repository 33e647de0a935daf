import FederationCore

/// A made-up instant for driving the state machine: time is whatever the test says it is.
struct TestInstant: InstantProtocol, Sendable {
    var offset: Duration

    static let zero = TestInstant(offset: .zero)

    static func seconds(_ value: Double) -> TestInstant {
        TestInstant(offset: .milliseconds(Int64(value * 1000)))
    }

    func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: offset + duration) }
    func duration(to other: TestInstant) -> Duration { other.offset - offset }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.offset < rhs.offset }
}

extension Array {
    /// The actions that ask the server to do work, without the announcements that only inform its telemetry
    /// (`phaseChanged`, `resultAccepted`, client liveness changes): what tests about round flow look at.
    func work<Instant>() -> [RoundAction<Instant>] where Element == RoundAction<Instant> {
        filter {
            switch $0 {
            case .phaseChanged, .resultAccepted, .clientWentSilent, .clientReturned: false
            default: true
            }
        }
    }
}
