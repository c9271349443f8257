import AWS
import Rotation

/// Reads the function's step records for one secret from its CloudWatch Logs log group.
struct StepLog {
    /// How far back to search when the pending version's age is unknown (and before it, a margin).
    static let defaultLookbackMilliseconds: Int64 = 14 * 24 * 3600 * 1000
    static let marginMilliseconds: Int64 = 10 * 60 * 1000

    /// The records found, oldest first, and why some may be missing (nil when none is).
    struct Found {
        let records: [StepRecord]
        let incompleteBecause: String?
    }

    let logs: LogSearchAPI

    /// A fleet's secrets share one log group, and one secret's creator names it at will: the search
    /// asks for the step line's SecretId member to equal the ARN exactly (a substring search would
    /// let a secret named after another's ARN flood the results), and parsing compares it again.
    func records(logGroup: String, secretArn: String, since: Int64) throws(AWSError) -> Found {
        let search = try logs.filterLogEvents(logGroup: logGroup, member: StepRecord.secretIdMember, equals: secretArn,
                                              startMilliseconds: since, limit: 200)
        return Found(records: search.events.compactMap { StepRecord.parse($0.message, secretArn: secretArn) },
                     incompleteBecause: search.incompleteBecause)
    }
}
