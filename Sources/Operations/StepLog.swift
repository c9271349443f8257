import AWS
import Rotation

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
