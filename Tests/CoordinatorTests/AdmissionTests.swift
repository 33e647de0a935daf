import FederationCore
import Testing

@testable import Coordinator

@Suite struct AdmissionTests {
    static func limits() -> CoordinatorConfiguration.Limits {
        var limits = CoordinatorConfiguration.Limits()
        limits.maxClients = 3
        limits.registrationsPerSecond = 1  // bursts of 2
        limits.refusedSubmissionsPerClientPerSecond = 1
        limits.maxParkedPolls = 4
        limits.maxParkedPollsPerClient = 2
        return limits
    }

    @Test func registrationsAreBoundedByCountAndRate() throws {
        var admission = Admission(limits: Self.limits())
        let start = ContinuousClock.now
        try admission.admitRegistration(registered: 0, now: start)
        try admission.admitRegistration(registered: 1, now: start)
        #expect(throws: LimitError.self) { try admission.admitRegistration(registered: 2, now: start) }
        do {
            try admission.admitRegistration(registered: 2, now: start)
        } catch {
            #expect(error.limit == .registerRate && error.retryAfter == .seconds(1))
        }
        try admission.admitRegistration(registered: 2, now: start.advanced(by: .seconds(1)))
        do {
            try admission.admitRegistration(registered: 3, now: start.advanced(by: .seconds(60)))
            Issue.record("a full federation admits no one")
        } catch {
            #expect(error.limit == .clients && error.retryAfter == nil)
        }
    }

    @Test func eachClientHasItsOwnSubmissionBudget() throws {
        var admission = Admission(limits: Self.limits())
        let now = ContinuousClock.now
        for _ in 0..<2 { try admission.admitSubmission(from: ClientID("a"), now: now) }
        #expect(throws: LimitError.self) { try admission.admitSubmission(from: ClientID("a"), now: now) }
        try admission.admitSubmission(from: ClientID("b"), now: now)
        admission.forget(ClientID("a"))
        try admission.admitSubmission(from: ClientID("a"), now: now)
    }

    @Test func acceptedSubmissionsDoNotSpendTheBudget() throws {
        var admission = Admission(limits: Self.limits())
        let now = ContinuousClock.now
        for _ in 0..<50 {
            try admission.admitSubmission(from: ClientID("a"), now: now)
            admission.submissionAccepted(from: ClientID("a"))
        }
        for _ in 0..<2 { try admission.admitSubmission(from: ClientID("a"), now: now) }  // refused ones
        #expect(throws: LimitError.self) { try admission.admitSubmission(from: ClientID("a"), now: now) }
    }

    @Test func longPollsAreBoundedPerClientAndInAll() throws {
        let admission = Admission(limits: Self.limits())
        try admission.admitLongPoll(own: 1, total: 3)
        do {
            try admission.admitLongPoll(own: 2, total: 2)
            Issue.record("a third poll of one client")
        } catch { #expect(error.limit == .clientLongPolls) }
        do {
            try admission.admitLongPoll(own: 0, total: 4)
            Issue.record("a fifth poll in all")
        } catch { #expect(error.limit == .longPolls) }
    }
}
