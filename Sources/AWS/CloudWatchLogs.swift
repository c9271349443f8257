import RotatorJSON

public struct LogEvent: Sendable, Equatable {
    public let timestampMilliseconds: Int64
    public let message: String

    public init(timestampMilliseconds: Int64, message: String) {
        self.timestampMilliseconds = timestampMilliseconds
        self.message = message
    }
}

/// What a log search found, and why it may have missed some of what matched.
public struct LogSearch: Sendable, Equatable {
    /// Oldest first.
    public let events: [LogEvent]
    /// Why matching events may be missing (a page or event limit reached, a value the search could
    /// not state exactly); nil when every match was read. A caller that reads "nothing found" must
    /// read this too: a search cut short is not an empty log.
    public let incompleteBecause: String?

    public init(events: [LogEvent], incompleteBecause: String?) {
        self.events = events
        self.incompleteBecause = incompleteBecause
    }
}

public protocol LogSearchAPI: AnyObject {
    /// The events of `logGroup` since `startMilliseconds` that are JSON objects whose root member
    /// `member` is the string `value` exactly, oldest first: the newest `limit` of those on the first
    /// `maximumPages` pages, with the reason when that is not all of them.
    func filterLogEvents(logGroup: String, member: String, equals value: String, startMilliseconds: Int64,
                         limit: Int) throws(AWSError) -> LogSearch
}

public final class CloudWatchLogsClient: LogSearchAPI {
    private let json: JSONProtocolClient
    /// Bounds the search on a very chatty log group; each page holds up to 10,000 events.
    static let maximumPages = 20

    public init(_ client: AWSServiceClient) {
        json = JSONProtocolClient(client: client, targetPrefix: "Logs_20140328")
    }

    /// The JSON filter pattern `{ $.member = "value" }`, or nil when it could not say exactly that.
    /// A quoted term (`"value"`) matches any event *containing* the text, so one secret's ARN would
    /// match every secret whose name extends it; a JSON pattern compares the member's whole value.
    /// Inside its quotes `*` is a wildcard and `%...%` a regular expression, and the syntax documents
    /// no escape, so a value is sent only when every character is one that stands for itself there:
    /// ASCII letters, digits and `:/_+=.@-` (what an ARN and a secret's name may hold). The member is
    /// a plain identifier.
    public static func jsonEqualityPattern(member: String, value: String) -> String? {
        func isLetterOrDigit(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
        }
        let memberIsIdentifier = !member.isEmpty && member.unicodeScalars.allSatisfy { isLetterOrDigit($0) || $0 == "_" }
        let valueStandsForItself = !value.isEmpty && value.unicodeScalars.allSatisfy { isLetterOrDigit($0) || ":/_+=.@-".unicodeScalars.contains($0) }
        guard memberIsIdentifier, valueStandsForItself else { return nil }
        return "{ $.\(member) = \"\(value)\" }"
    }

    public func filterLogEvents(logGroup: String, member: String, equals value: String, startMilliseconds: Int64,
                                limit: Int) throws(AWSError) -> LogSearch {
        guard let pattern = CloudWatchLogsClient.jsonEqualityPattern(member: member, value: value) else {
            return LogSearch(events: [], incompleteBecause: "the log was not searched: the value sought for \(member) holds a character "
                + "that a CloudWatch Logs filter pattern cannot match exactly")
        }
        var pages = 0
        var events: [LogEvent] = []
        var nextToken: String?
        repeat {
            var input: [(String, JSON)] = [
                ("logGroupName", .string(logGroup)), ("filterPattern", .string(pattern)),
                ("startTime", .number(String(startMilliseconds))),
            ]
            if let nextToken { input.append(("nextToken", .string(nextToken))) }
            let out = try json.call("FilterLogEvents", .object(input))
            for item in out["events"]?.arrayValue ?? [] {
                guard let message = item["message"]?.stringValue, case .number(let text)? = item["timestamp"],
                      let timestamp = Int64(text) else { continue }
                events.append(LogEvent(timestampMilliseconds: timestamp, message: message))
            }
            nextToken = out["nextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            pages += 1
        } while nextToken != nil && pages < CloudWatchLogsClient.maximumPages
        var incomplete: [String] = []
        if nextToken != nil {
            incomplete.append("the log search stopped after \(pages) pages with more to read")
        }
        if events.count > limit {
            incomplete.append("only the newest \(limit) of \(events.count) matching events were kept")
        }
        return LogSearch(events: Array(events.sorted { $0.timestampMilliseconds < $1.timestampMilliseconds }.suffix(limit)),
                         incompleteBecause: incomplete.isEmpty ? nil : incomplete.joined(separator: "; "))
    }
}
