import AWS
import RotatorLogging

/// Runs a `HostCommand` on every instance through SSM Run Command and waits for each answer,
/// within a time budget that always ends before the invocation does. Every command goes through a
/// document version `DocumentVerifier` proved to be the one this rotator ships, and names that
/// version: whoever may change the configured document names or the documents' default versions
/// cannot change what runs on the hosts.
public final class HostRunner {
    public typealias SSM = RunCommandAPI & SSMDocumentAPI
    private let ssm: SSM
    /// The document name per engine, as configured (the function's environment).
    private let documents: [Engine: String]
    private let verifier: DocumentVerifier
    private let clock: MillisecondClock
    private let observer: HostProgressObserver?
    /// The pace of polls for the first `steadyPollingMilliseconds` after the send. Each wait is
    /// between half of it and all of it (jitter: rotations that Secrets Manager starts together
    /// do not poll SSM in step).
    let pollInitialMilliseconds: Int64
    /// The pace unless HOST_POLL_MILLISECONDS says otherwise: about SSM's own delay before a host
    /// starts a command, so it costs a rotation little time and a fleet few calls (docs/FLEET.md).
    public static let defaultPollMilliseconds: Int64 = 1_000
    /// What HOST_POLL_MILLISECONDS may say: faster than 100 ms would spend the account's Run Command
    /// rate on one rotation; slower than 5 s would keep a step waiting on a host long done.
    public static let pollMillisecondsRange: ClosedRange<Int64> = 100...5_000
    static let pollMaximumMilliseconds: Int64 = 3_000
    /// How long a command is polled at the initial pace before the polls back off. Most host
    /// scripts end within seconds, and the time between polls is how late the step notices
    /// (make bench: 1 s late at the median when the backoff started at once); past this, a long
    /// command costs few SSM calls.
    static let steadyPollingMilliseconds: Int64 = 30_000
    /// The longest wait after SSM throttled a call (the AWS SDKs' standard retry mode's cap).
    static let throttledWaitMaximumMilliseconds: Int64 = 20_000
    /// Longest excerpt of a script's standard error kept for logs and alerts.
    static let errorExcerptLength = 500
    /// How the SSM agent ends an output it cut at 24,000 characters (standard error: 8,000).
    static let outputTruncatedSuffix = "--output truncated--"
    /// A value in [0, 1) per call: the jitter of the waits.
    private let random: () -> Double

    /// `verifier` outlives the runner (the function keeps one per process), so a warm container
    /// reads no document again.
    public init(ssm: SSM, documents: [Engine: String], verifier: DocumentVerifier, clock: MillisecondClock,
                observer: HostProgressObserver? = nil, pollInitialMilliseconds: Int64 = HostRunner.defaultPollMilliseconds,
                random: @escaping () -> Double = { Double.random(in: 0..<1) }) {
        self.ssm = ssm
        self.documents = documents
        self.verifier = verifier
        self.clock = clock
        self.observer = observer
        self.pollInitialMilliseconds = pollInitialMilliseconds
        self.random = random
    }

    public func documentName(for engine: Engine) throws(RotationError) -> String {
        guard let name = documents[engine], !name.isEmpty else {
            throw .configuration("no SSM document is configured for engine \(engine.rawValue) (set \(engine.documentVariable))")
        }
        return name
    }

    /// The engine's document, proven to be the one this rotator ships (read at most once per verifier).
    func verifiedDocument(for engine: Engine) throws(RotationError) -> VerifiedDocument {
        let name = try documentName(for: engine)
        do {
            return try verifier.verified(name, engine: engine, ssm: ssm)
        } catch {
            switch error.reason {
            case .notRead(let awsError): throw .aws(awsError)
            case .missing: throw .configuration("\(error) (set \(engine.documentVariable) to the stack's document)")
            case .unreadable, .different: throw .documentRefused(error.description)
            }
        }
    }

    /// Sends `command` to `instanceIds` and returns one result per instance. Instances that have not
    /// answered by `untilMilliseconds` are cancelled and reported as `NoAnswer`; if SSM cannot be
    /// asked how the command went, those not yet answered are cancelled and reported as `NotFollowed`.
    public func run(_ command: HostCommand, engine: Engine, on instanceIds: [String], step: RotationStep,
                    untilMilliseconds budgetEnd: Int64, logger: Logger) throws(RotationError) -> [InstanceResult] {
        try run(command, engine: engine, on: instanceIds, comment: "rotator \(step.rawValue): \(command.action.rawValue)",
                untilMilliseconds: budgetEnd, logger: logger)
    }

    /// The same for a command outside a rotation step (the operator's checks); `comment` is what
    /// SSM's command history shows (at most 100 characters).
    public func run(_ command: HostCommand, engine: Engine, on instanceIds: [String], comment: String,
                    untilMilliseconds budgetEnd: Int64, logger: Logger) throws(RotationError) -> [InstanceResult] {
        let document = try verifiedDocument(for: engine)
        let deliverySeconds = max(30, Int((budgetEnd - clock.nowMilliseconds) / 1000))
        let input = SendCommandInput(documentName: document.name, documentVersion: document.version, instanceIds: instanceIds,
                                     parameters: command.parameters, comment: comment, timeoutSeconds: deliverySeconds)
        // Throttles of this command's calls: a throttled send slows the polls that follow too.
        var throttle = ThrottleBackoff()
        let commandId: String
        while true {
            do {
                commandId = try ssm.sendCommand(input)
                break
            } catch where error.isThrottling {
                // SSM refused the call for the account's rate: nothing was sent. Send again later,
                // while the budget leaves time for the command to run.
                let wait = throttle.wait(pace: pollInitialMilliseconds, random: random)
                if clock.nowMilliseconds + wait >= budgetEnd { throw RotationError(error) }
                logger.warn("SSM throttled the command; sending it again", ("waitMilliseconds", String(wait)))
                clock.sleep(milliseconds: wait)
            } catch {
                // The proven version is gone (deleted): nothing was sent. The next command reads the
                // document again, and runs only if its default version is the shipped one.
                if error.isServiceError("InvalidDocumentVersion") { verifier.forget(document.name) }
                throw RotationError(error)
            }
        }
        let log = logger.with(("commandId", commandId), ("action", command.action.rawValue))
        log.info("host command sent", ("document", document.name), ("documentVersion", document.version),
                 ("instances", instanceIds.joined(separator: ",")))
        observer?.sent(commandId: commandId, to: instanceIds)

        var results: [String: InstanceResult] = [:]
        var pace = pollInitialMilliseconds
        // The last poll SSM throttled, while polls are still throttled: what the hosts' failure names.
        var lastThrottle: RotationError?
        let sentAt = clock.nowMilliseconds
        // The first poll comes a wait after the send: no script has answered the moment it is sent.
        while true {
            let waiting = instanceIds.filter { results[$0] == nil }
            if waiting.isEmpty { break }
            let wait = throttle.isThrottled ? throttle.nextWait(pace: pace, random: random) : HostRunner.jittered(pace, random: random)
            if clock.nowMilliseconds + wait >= budgetEnd {
                let detail = lastThrottle.map { "no answer before the invocation deadline, SSM throttling the polls (\($0)); command cancelled" }
                    ?? "no answer before the invocation deadline; command cancelled"
                stopFollowing(commandId: commandId, waiting: waiting, status: "NoAnswer", detail: detail, into: &results, log: log)
                break
            }
            observer?.waiting(for: waiting)
            clock.sleep(milliseconds: wait)
            do {
                try collectFinished(commandId: commandId, command: command, instanceIds: instanceIds, into: &results, log: log)
                throttle.succeeded()
                if !throttle.isThrottled { lastThrottle = nil }
            } catch where error.isThrottling {
                lastThrottle = error
                // The account's polling rate is spent (every rotation polling now shares it): this
                // says nothing about the hosts. Poll again, later.
                throttle.throttled()
                log.warn("SSM throttled the poll; polling again later", ("throttledInARow", String(throttle.level)))
                continue
            } catch {
                // The command was sent, so a script may be changing a password we can no longer
                // see: report the hosts as failed, so the step rolls back instead of leaving them.
                stopFollowing(commandId: commandId, waiting: instanceIds.filter { results[$0] == nil }, status: "NotFollowed",
                              detail: "could not follow the command (\(error)); command cancelled", into: &results, log: log)
                break
            }
            if clock.nowMilliseconds - sentAt >= HostRunner.steadyPollingMilliseconds {
                pace = min(pace * 3 / 2, HostRunner.pollMaximumMilliseconds)
            }
        }
        return instanceIds.compactMap { results[$0] }
    }

    /// One round: a ListCommandInvocations call says which of up to 50 instances are done; only
    /// those are read in full.
    private func collectFinished(commandId: String, command: HostCommand, instanceIds: [String],
                                 into results: inout [String: InstanceResult], log: Logger) throws(RotationError) {
        let statuses = try aws { () throws(AWSError) in try ssm.listCommandInvocations(commandId: commandId) }
        for instanceId in instanceIds where results[instanceId] == nil {
            guard let status = statuses[instanceId], CommandInvocation.isFinished(status: status) else { continue }
            if let finished = try poll(commandId: commandId, instanceId: instanceId, command: command) {
                results[instanceId] = finished
                log.info("host answered", ("instanceId", instanceId), ("status", finished.status),
                         ("responseCode", String(finished.responseCode)), ("outcome", finished.outcome ?? "failed"))
                observer?.answered(finished)
            }
        }
    }

    /// Cancels the command where it has not answered (no script left running that we no longer
    /// watch; a retried step starts afresh) and reports those instances as failed with `status`.
    private func stopFollowing(commandId: String, waiting: [String], status: String, detail: String,
                               into results: inout [String: InstanceResult], log: Logger) {
        guard !waiting.isEmpty else { return }
        do { try ssm.cancelCommand(commandId: commandId, instanceIds: waiting) } catch {
            log.warn("could not cancel the command", ("reason", error.description))
        }
        for instanceId in waiting {
            results[instanceId] = InstanceResult(instanceId: instanceId, status: status, responseCode: -1, outcome: nil, errorExcerpt: detail)
            log.error("stopped following the host", ("instanceId", instanceId), ("status", status))
            observer?.stopped(instanceId: instanceId, reason: detail)
        }
    }

    /// The finished result, or `nil` while SSM reports the invocation pending (or does not know it yet:
    /// SSM's views are only eventually consistent).
    private func poll(commandId: String, instanceId: String, command: HostCommand) throws(RotationError) -> InstanceResult? {
        let invocation: CommandInvocation
        do {
            invocation = try ssm.getCommandInvocation(commandId: commandId, instanceId: instanceId)
        } catch where error.isServiceError("InvocationDoesNotExist") {
            // Right after SendCommand SSM often does not know the invocation yet: "not yet", not failure.
            return nil
        } catch {
            throw RotationError(error)
        }
        guard invocation.isFinished else { return nil }
        let succeeded = invocation.status == "Success" && invocation.responseCode == 0
        let outcome = succeeded ? command.reportedOutcome(in: invocation.standardOutput) : nil
        var excerpt = HostRunner.excerpt(invocation.standardError.isEmpty ? invocation.statusDetails : invocation.standardError)
        if succeeded, outcome == nil, invocation.standardOutput.hasSuffix(HostRunner.outputTruncatedSuffix) {
            // The script prints only its result line, last: something else on the host printed
            // enough for SSM to cut the line away. Whatever the script did is unknown.
            excerpt = "SSM cut the output at 24,000 characters, losing the result line: something on the host prints more than the script"
        }
        return InstanceResult(instanceId: instanceId, status: invocation.status, responseCode: invocation.responseCode,
                              outcome: outcome, errorExcerpt: excerpt)
    }

    /// A wait of between half of `pace` and `pace`.
    static func jittered(_ pace: Int64, random: () -> Double) -> Int64 {
        pace / 2 + Int64(random() * Double(pace - pace / 2))
    }

    /// The last lines of a script's error output, flattened to one line. The output can echo names
    /// the application's login chose (a table, a role), so what is kept is shown with its control
    /// characters escaped, as every untrusted text in an alert is.
    static func excerpt(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces }.filter { !$0.isEmpty }.joined(separator: " | ")
        return Identifiers.shownOnOneLine(flat.count <= errorExcerptLength ? flat : "…" + String(flat.suffix(errorExcerptLength)))
    }
}

/// How long to wait after SSM throttled calls in a row: full jitter (a random wait up to a ceiling)
/// under a ceiling that doubles with each throttle, up to `HostRunner.throttledWaitMaximumMilliseconds`.
/// As botocore's adaptive mode cuts its sending rate multiplicatively when throttled and raises it
/// back step by step, each call that goes through halves the ceiling again.
struct ThrottleBackoff {
    /// Throttles not yet offset by calls that went through.
    private(set) var level = 0
    /// Beyond this the ceiling is at its maximum anyway (1 s << 5 > 20 s).
    static let maximumLevel = 8

    var isThrottled: Bool { level > 0 }

    mutating func throttled() { level = min(level + 1, ThrottleBackoff.maximumLevel) }
    mutating func succeeded() { level = max(level - 1, 0) }

    /// The wait before the next call at the current level.
    func nextWait(pace: Int64, random: () -> Double) -> Int64 {
        let ceiling = min(pace << Int64(level), HostRunner.throttledWaitMaximumMilliseconds)
        return Int64(random() * Double(ceiling))
    }

    /// Records a throttled call and returns the wait before the next.
    mutating func wait(pace: Int64, random: () -> Double) -> Int64 {
        throttled()
        return nextWait(pace: pace, random: random)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return s
    }
}
