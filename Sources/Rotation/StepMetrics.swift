import AWS
import RotatorJSON
import RotatorLogging

/// Writes one Embedded Metric Format line per step (namespace `SecretsRotator`):
///
/// - `StepDuration` (ms) by `Step` and by `Step`+`Outcome` (`Success`/`Failure`);
/// - `Failures` (count) with no dimension, for one alarm on every failure, and by `Step`+`Reason`,
///   the `RotationError` kind (`HostCommandFailed`, `InvalidSecret`, ...): a small fixed set;
/// - `RotationDuration` (ms) when finishSecret succeeds, from this process's createSecret of the
///   same version (Lambda usually keeps one sandbox for the four steps; when it did not, the metric
///   is left out rather than guessed).
///
/// The secret's ARN and the version id are properties, not dimensions: every distinct dimension
/// value is a metric CloudWatch bills and keeps separately, so a per-secret dimension would multiply
/// the metrics by the number of secrets. The properties keep each line findable in the log (the
/// operator's `status` reads the last failure from them, through `StepRecord` below). No value of the
/// secret is ever written.
public final class StepMetrics {
    public static let namespace = "SecretsRotator"
    /// The root members of a step line: written by `StepMetrics`, read back by `StepRecord`.
    enum Key {
        /// Marks our lines among the function's log lines.
        static let marker = "RotatorStep"
        static let step = "Step"
        static let outcome = "Outcome"
        static let reason = "Reason"
        static let secretId = "SecretId"
        static let versionId = "VersionId"
        static let errorMessage = "ErrorMessage"
        static let stepDuration = "StepDuration"
        static let failures = "Failures"
        static let rotationDuration = "RotationDuration"
        /// The values of `outcome`.
        static let success = "Success"
        static let failure = "Failure"
    }
    static let rememberedRotations = 32

    private let clock: MillisecondClock
    private let sink: @Sendable (String) -> Void
    private var rotationStarts: [(versionId: String, startedMilliseconds: Int64)] = []

    public init(clock: MillisecondClock, sink: @escaping @Sendable (String) -> Void = Logger.standardOutput) {
        self.clock = clock
        self.sink = sink
    }

    public func stepFinished(_ event: RotationEvent, startedMilliseconds: Int64, failure: RotationError?) {
        let now = clock.nowMilliseconds
        if event.step == .createSecret, !rotationStarts.contains(where: { $0.versionId == event.token }) {
            rotationStarts.append((event.token, startedMilliseconds))
            if rotationStarts.count > StepMetrics.rememberedRotations { rotationStarts.removeFirst() }
        }
        var directives = [EmbeddedMetricLine.Directive(dimensionSets: [[Key.step], [Key.step, Key.outcome]],
                                                       metrics: [(Key.stepDuration, .milliseconds)])]
        var strings: [(String, String)] = [(Key.step, event.step.rawValue),
                                           (Key.outcome, failure == nil ? Key.success : Key.failure)]
        var values: [(String, Int64)] = [(Key.stepDuration, max(0, now - startedMilliseconds))]
        if let failure {
            directives.append(.init(dimensionSets: [[], [Key.step, Key.reason]], metrics: [(Key.failures, .count)]))
            strings.append((Key.reason, failure.errorType))
            values.append((Key.failures, 1))
        } else if event.step == .finishSecret, let start = rotationStarts.first(where: { $0.versionId == event.token }) {
            directives.append(.init(dimensionSets: [[]], metrics: [(Key.rotationDuration, .milliseconds)]))
            values.append((Key.rotationDuration, max(0, now - start.startedMilliseconds)))
        }
        if event.step == .finishSecret { rotationStarts.removeAll { $0.versionId == event.token } }
        strings += [(Key.marker, "1"), (Key.secretId, event.secretId), (Key.versionId, event.token)]
        if let failure { strings.append((Key.errorMessage, failure.description)) }
        sink(EmbeddedMetricLine(namespace: StepMetrics.namespace, timestampMilliseconds: now, directives: directives,
                                strings: strings, values: values).serialized)
    }
}

/// One step as the function recorded it: its step line, read back from the log.
public struct StepRecord: Equatable, Sendable {
    public let step: String
    public let succeeded: Bool
    /// The failure's `RotationError.Kind` raw value, as written; kept as text so a reason this
    /// build does not know still shows.
    public let reason: String?
    public let message: String?
    public let versionId: String
    public let atMilliseconds: Int64

    public init(step: String, succeeded: Bool, reason: String?, message: String?, versionId: String, atMilliseconds: Int64) {
        self.step = step
        self.succeeded = succeeded
        self.reason = reason
        self.message = message
        self.versionId = versionId
        self.atMilliseconds = atMilliseconds
    }

    /// The root member of a step line that holds the secret's ARN, for searching the log by it.
    public static let secretIdMember = StepMetrics.Key.secretId

    /// The failure's kind, when it is one this build knows.
    public var kind: RotationError.Kind? { reason.flatMap(RotationError.Kind.init(rawValue:)) }

    /// The record in one log line, or nil when the line is not one of the function's step lines.
    public static func parse(_ message: String, secretArn: String) -> StepRecord? {
        typealias Key = StepMetrics.Key
        guard message.hasPrefix("{"), let line = try? JSON.parse(message), line[Key.marker] != nil,
              line[Key.secretId]?.stringValue == secretArn,
              let step = line[Key.step]?.stringValue, let outcome = line[Key.outcome]?.stringValue,
              let versionId = line[Key.versionId]?.stringValue,
              let at = EmbeddedMetricLine.timestampMilliseconds(of: line) else { return nil }
        return StepRecord(step: step, succeeded: outcome == Key.success, reason: line[Key.reason]?.stringValue,
                          message: line[Key.errorMessage]?.stringValue, versionId: versionId, atMilliseconds: at)
    }
}
