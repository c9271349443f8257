import AWS
import JSON
import Rotation

/// One step as the function recorded it: its Embedded Metric Format line (Rotation.StepMetrics).
public struct StepRecord: Equatable, Sendable {
    public let step: String
    public let succeeded: Bool
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

    /// The record in one log line, or nil when the line is not one of the function's step lines.
    public static func parse(_ message: String, secretArn: String) -> StepRecord? {
        guard message.hasPrefix("{"), let line = try? JSON.parse(message), line[StepMetrics.marker] != nil,
              line["SecretId"]?.stringValue == secretArn,
              let step = line["Step"]?.stringValue, let outcome = line["Outcome"]?.stringValue,
              let versionId = line["VersionId"]?.stringValue,
              case .number(let timestamp)? = line["_aws"]?["Timestamp"], let at = Int64(timestamp) else { return nil }
        return StepRecord(step: step, succeeded: outcome == "Success", reason: line["Reason"]?.stringValue,
                          message: line["ErrorMessage"]?.stringValue, versionId: versionId, atMilliseconds: at)
    }
}

/// Reads the function's step records for one secret from its CloudWatch Logs log group.
struct StepLog {
    /// How far back to search when the pending version's age is unknown (and before it, a margin).
    static let defaultLookbackMilliseconds: Int64 = 14 * 24 * 3600 * 1000
    static let marginMilliseconds: Int64 = 10 * 60 * 1000

    let logs: LogSearchAPI

    func records(logGroup: String, secretArn: String, since: Int64) throws(AWSError) -> [StepRecord] {
        try logs.filterLogEvents(logGroup: logGroup, containing: secretArn, startMilliseconds: since, limit: 200)
            .compactMap { StepRecord.parse($0.message, secretArn: secretArn) }
    }
}
