import AWS
import Rotation

/// Shows a host command while it runs: which check, which instances still owe an answer, elapsed
/// time. HostRunner tells it what happens (`HostProgressObserver`); the clock only measures.
final class HostProgress: HostProgressObserver, @unchecked Sendable {
    private let console: Console
    private let clock: MillisecondClock
    private let label: String
    private let started: Int64

    init(console: Console, clock: MillisecondClock, label: String, instanceIds: [String]) {
        self.console = console
        self.clock = clock
        self.label = label
        started = clock.nowMilliseconds
        console.progress("\(label): sending to \(instanceIds.joined(separator: ", "))", milestone: true)
    }

    var elapsed: String { durationText(clock.nowMilliseconds - started) }

    /// Nothing to add: the line went out before sending, so a failing SendCommand still shows what
    /// was attempted.
    func sent(commandId: String, to instanceIds: [String]) {}

    func answered(_ result: InstanceResult) {
        console.progress("\(label): \(result.instanceId) answered: \(result.outcome ?? "failed") (\(elapsed))", milestone: true)
    }

    func stopped(instanceId: String, reason: String) {
        console.progress("\(label): \(instanceId) did not answer (\(elapsed))", milestone: true)
    }

    func waiting(for instanceIds: [String]) {
        console.progress("\(label): waiting for \(instanceIds.joined(separator: ", ")) (\(elapsed))", milestone: false)
    }
}
