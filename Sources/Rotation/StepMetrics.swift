import AWS
import Logging

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
/// operator's `status` reads the last failure from them). No value of the secret is ever written.
public final class StepMetrics {
    public static let namespace = "SecretsRotator"
    /// The root member that marks our lines among the function's log lines.
    public static let marker = "RotatorStep"
    static let rememberedRotations = 32

    private let clock: Clock
    private let sink: @Sendable (String) -> Void
    private var rotationStarts: [(versionId: String, startedMilliseconds: Int64)] = []

    public init(clock: Clock, sink: @escaping @Sendable (String) -> Void = Logger.standardOutput) {
        self.clock = clock
        self.sink = sink
    }

    public func stepFinished(_ event: RotationEvent, startedMilliseconds: Int64, failure: RotationError?) {
        let now = clock.nowMilliseconds
        if event.step == .createSecret, !rotationStarts.contains(where: { $0.versionId == event.token }) {
            rotationStarts.append((event.token, startedMilliseconds))
            if rotationStarts.count > StepMetrics.rememberedRotations { rotationStarts.removeFirst() }
        }
        var directives = [EmbeddedMetricLine.Directive(dimensionSets: [["Step"], ["Step", "Outcome"]],
                                                       metrics: [("StepDuration", .milliseconds)])]
        var strings: [(String, String)] = [("Step", event.step.rawValue), ("Outcome", failure == nil ? "Success" : "Failure")]
        var values: [(String, Int64)] = [("StepDuration", max(0, now - startedMilliseconds))]
        if let failure {
            directives.append(.init(dimensionSets: [[], ["Step", "Reason"]], metrics: [("Failures", .count)]))
            strings.append(("Reason", failure.errorType))
            values.append(("Failures", 1))
        } else if event.step == .finishSecret, let start = rotationStarts.first(where: { $0.versionId == event.token }) {
            directives.append(.init(dimensionSets: [[]], metrics: [("RotationDuration", .milliseconds)]))
            values.append(("RotationDuration", max(0, now - start.startedMilliseconds)))
        }
        if event.step == .finishSecret { rotationStarts.removeAll { $0.versionId == event.token } }
        strings += [(StepMetrics.marker, "1"), ("SecretId", event.secretId), ("VersionId", event.token)]
        if let failure { strings.append(("ErrorMessage", failure.description)) }
        sink(EmbeddedMetricLine(namespace: StepMetrics.namespace, timestampMilliseconds: now, directives: directives,
                                strings: strings, values: values).serialized)
    }
}
