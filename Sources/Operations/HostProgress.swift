import AWS
import JSON
import Logging

/// Shows a host command while it runs: which check, which instances still owe an answer, elapsed
/// time. It learns of answers from HostRunner's own log events (the logger it is handed) and
/// redraws whenever HostRunner waits between polls (the clock it is handed).
final class HostProgress: @unchecked Sendable {
    private let console: Console
    private let clock: Clock
    private let label: String
    private var waiting: [String]
    private let started: Int64

    init(console: Console, clock: Clock, label: String, instanceIds: [String]) {
        self.console = console
        self.clock = clock
        self.label = label
        waiting = instanceIds
        started = clock.nowMilliseconds
        console.progress("\(label): sending to \(instanceIds.joined(separator: ", "))", milestone: true)
    }

    var elapsed: String { durationText(clock.nowMilliseconds - started) }

    func redraw() {
        console.progress("\(label): waiting for \(waiting.joined(separator: ", ")) (\(elapsed))", milestone: false)
    }

    /// HostRunner's log lines, as JSON: "host answered" / "host did not answer in time" name an instance.
    var logger: Logger {
        Logger(format: .json, minimumLevel: .info, sink: { [self] line in consume(line) })
    }

    private func consume(_ line: String) {
        guard let event = try? JSON.parse(line), let message = event["message"]?.stringValue,
              let instanceId = event["instanceId"]?.stringValue else { return }
        switch message {
        case "host answered":
            waiting.removeAll { $0 == instanceId }
            let outcome = event["outcome"]?.stringValue ?? "?"
            console.progress("\(label): \(instanceId) answered: \(outcome) (\(elapsed))", milestone: true)
        case "host did not answer in time":
            waiting.removeAll { $0 == instanceId }
            console.progress("\(label): \(instanceId) did not answer (\(elapsed))", milestone: true)
        default:
            return
        }
    }
}

/// The system clock, with a hook that runs while a poll loop is about to wait.
final class ProgressClock: Clock {
    private let base: Clock
    var onWait: (() -> Void)?

    init(base: Clock) {
        self.base = base
    }

    var nowMilliseconds: Int64 { base.nowMilliseconds }

    func sleep(milliseconds: Int64) {
        onWait?()
        base.sleep(milliseconds: milliseconds)
    }
}
