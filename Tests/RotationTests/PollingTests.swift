import AWS
import RotatorTestSupport
import Testing
@testable import Rotation

/// A seeded source of values in [0, 1) (SplitMix64): the jitter the tests see is the same on
/// every run, and two seeds stand for two function processes.
final class SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}

/// How the runner polls SSM: jittered, slower when SSM throttles, never past the step's budget.
/// SSM's Run Command rates are the account's, shared by every rotation polling at that moment: a
/// throttled poll says nothing about the host.
@Suite struct PollingTests {
    func runner(_ w: World, seed: UInt64) -> HostRunner {
        let random = SeededRandom(seed: seed)
        return HostRunner(ssm: w.ssm, documents: [.postgres: "RotatorPostgres"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                          clock: w.clock, random: random.next)
    }

    func setCommand(_ w: World) throws -> HostCommand {
        try HostCommand(action: .set, secretArn: w.secrets.arn, versionId: token)
    }

    /// SSM throttles more polls in a row than the AWS client's own retries cover: the runner waits
    /// and polls again, and follows the command to its end (before, the host was reported
    /// NotFollowed, the command cancelled and the step rolled back).
    @Test func aThrottledPollIsRetriedAndTheCommandIsFollowedToItsEnd() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.throttledListings = 12
        try w.run(.setSecret)
        #expect(w.ssm.cancelled.isEmpty)
        #expect(w.ssm.sent.count == 1)
        #expect(w.ssm.hosts[instanceA]?.password == w.pendingPassword())
        #expect(w.ssm.listingCalls > 12)
        #expect(w.sns.published.isEmpty)
    }

    /// SSM throttles the send until the budget's end: the runner gives up when sending again would
    /// come on the budget's last millisecond, as a poll does (the budget's end is when the step must
    /// be rolling back), and nothing is sent. The random source gives 0.5, so the first throttled
    /// wait is half its ceiling of twice the pace: exactly the budget.
    @Test func aSendThrottledUntilTheBudgetEndsSendsNothing() throws {
        let w = World(instances: [instanceA])
        w.ssm.throttledSends = 1
        let hosts = HostRunner(ssm: w.ssm, documents: [.postgres: "RotatorPostgres"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                               clock: w.clock, random: { 0.5 })
        let budgetEnd = w.clock.nowMilliseconds + hosts.pollInitialMilliseconds
        #expect(throws: RotationError.self) {
            try hosts.run(setCommand(w), engine: .postgres, on: [instanceA], step: .setSecret,
                          untilMilliseconds: budgetEnd, logger: w.lines.logger)
        }
        #expect(w.ssm.sent.isEmpty)
        #expect(w.clock.nowMilliseconds < budgetEnd)
    }

    /// The deadline comes after polls went through again but while they are still throttled (the
    /// backoff not yet back to its level): the failure still names SSM's throttling. The random
    /// source gives 0.5: polls at 750, 1750 and 3750 ms are throttled (waits of 1, 2 and 4 s), the
    /// one at 7750 ms goes through and leaves two throttles to offset, and the next, 2 s later,
    /// would pass the budget's end at 9 s.
    @Test func aDeadlineWhilePollsAreStillThrottledNamesTheThrottling() throws {
        let w = World(instances: [instanceA])
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        w.ssm.throttledListings = 3
        let hosts = HostRunner(ssm: w.ssm, documents: [.postgres: "RotatorPostgres"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                               clock: w.clock, random: { 0.5 })
        let results = try hosts.run(setCommand(w), engine: .postgres, on: [instanceA], step: .setSecret,
                                    untilMilliseconds: w.clock.nowMilliseconds + 9_000, logger: w.lines.logger)
        #expect(w.clock.sleeps == [750, 1_000, 2_000, 4_000])
        #expect(results.map(\.status) == ["NoAnswer"])
        #expect(results.first?.errorExcerpt.contains("SSM throttling the polls") == true, "\(results)")
    }

    /// The pace slows once 30 s have passed since the send, the moment itself counted: with every
    /// wait exactly half the pace (the random source gives 0), the 60th wait of 500 ms ends 30 s
    /// after the send, and the next is half of the pace made 1.5 s.
    @Test func thePaceSlowsFromTheMomentThirtySecondsHavePassed() throws {
        let w = World(instances: [instanceA])
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        let hosts = HostRunner(ssm: w.ssm, documents: [.postgres: "RotatorPostgres"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                               clock: w.clock, random: { 0 })
        _ = try hosts.run(setCommand(w), engine: .postgres, on: [instanceA], step: .setSecret,
                          untilMilliseconds: w.clock.nowMilliseconds + 40_000, logger: w.lines.logger)
        #expect(Array(w.clock.sleeps.prefix(61)) == Array(repeating: 500, count: 60) + [750])
    }

    /// HOST_POLL_MILLISECONDS may say 100 to 5000, both included (README): the function refuses
    /// to start on any other pace (FunctionEnvironment reads this range).
    @Test func thePaceMayBeSetFrom100To5000MillisecondsBothIncluded() {
        let range = HostRunner.pollMillisecondsRange
        #expect(range.contains(100) && range.contains(5_000))
        #expect(!range.contains(99) && !range.contains(5_001))
    }

    /// A SendCommand SSM throttled sent nothing: it is sent again, once.
    @Test func aThrottledSendIsSentAgain() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.throttledSends = 3
        try w.run(.setSecret)
        #expect(w.ssm.sent.count == 1)
        #expect(w.ssm.hosts[instanceA]?.password == w.pendingPassword())
    }

    /// SSM throttles every poll: the step ends as it does for a host that never answers, the
    /// command cancelled and the current password sent back, before the invocation's deadline.
    @Test func throttlingUntilTheDeadlineCancelsAndRollsBackBeforeIt() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.followError = serviceError("ThrottlingException")
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.description.contains("NoAnswer"))
        #expect(error.description.contains("SSM throttling the polls"))
        #expect(error.description.contains("ThrottlingException"))
        #expect(w.clock.nowMilliseconds < w.deadline)
        // The set and the restore: both sent, both cancelled.
        #expect(w.ssm.sent.count == 2)
        #expect(w.ssm.cancelled.map(\.1) == [[instanceA], [instanceA]])
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.sns.published.count == 1)
        // No wait is longer than the throttled ceiling.
        #expect(w.clock.sleeps.allSatisfy { $0 <= HostRunner.throttledWaitMaximumMilliseconds })
    }

    /// Regular polls wait between half their pace and their pace (the pace: 1 s for 30 s after the
    /// send, then half again per poll up to 3 s); two processes with different random sources poll
    /// at different moments.
    @Test func pollsAreJitteredWithinTheirPace() throws {
        let w = World(instances: [instanceA])
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        let start = w.clock.nowMilliseconds
        _ = try runner(w, seed: 1).run(setCommand(w), engine: .postgres, on: [instanceA], step: .setSecret,
                                         untilMilliseconds: start + 120_000, logger: w.lines.logger)
        var pace: Int64 = 1_000
        var elapsed: Int64 = 0
        for sleep in w.clock.sleeps {
            #expect(sleep >= pace / 2 && sleep <= pace, "a wait of \(sleep) ms at a pace of \(pace) ms")
            elapsed += sleep
            if elapsed >= 30_000 { pace = min(pace * 3 / 2, 3_000) }
        }
        #expect(pace == 3_000)
        #expect(Set(w.clock.sleeps).count > w.clock.sleeps.count / 2, "the waits vary")

        let other = World(instances: [instanceA])
        other.ssm.hosts[instanceA]?.fault = .neverAnswers
        _ = try runner(other, seed: 2).run(setCommand(other), engine: .postgres, on: [instanceA], step: .setSecret,
                                             untilMilliseconds: other.clock.nowMilliseconds + 120_000, logger: other.lines.logger)
        #expect(Array(w.clock.sleeps.prefix(10)) != Array(other.clock.sleeps.prefix(10)))
    }

    /// Throttled polls wait a random time under a ceiling that doubles with each throttle in a row
    /// (full jitter), up to 20 s; once polls go through again the pace comes back down.
    @Test func throttledPollsBackOffWithFullJitterAndRecover() throws {
        let w = World(instances: [instanceA])
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        w.ssm.throttledListings = 8
        _ = try runner(w, seed: 3).run(setCommand(w), engine: .postgres, on: [instanceA], step: .setSecret,
                                         untilMilliseconds: w.clock.nowMilliseconds + 400_000, logger: w.lines.logger)
        // The first wait precedes the first poll; waits 2...9 follow the 8 throttled polls.
        let throttledWaits = Array(w.clock.sleeps.dropFirst().prefix(8))
        for (index, wait) in throttledWaits.enumerated() {
            let ceiling = min(Int64(1_000) << Int64(index + 1), HostRunner.throttledWaitMaximumMilliseconds)
            #expect(wait >= 0 && wait < ceiling, "throttled wait \(index + 1): \(wait) ms, ceiling \(ceiling) ms")
        }
        #expect(throttledWaits.contains { $0 > 3_000 }, "throttling slows polls beyond their normal pace")
        // After the throttles, the waits come back within the normal pace (3 s at most) once
        // enough polls went through.
        #expect(w.clock.sleeps.suffix(5).allSatisfy { $0 <= 3_000 })
    }
}
