import RotatorJSON

public struct LogEvent: Sendable, Equatable {
    public let timestampMilliseconds: Int64
    public let message: String

    public init(timestampMilliseconds: Int64, message: String) {
        self.timestampMilliseconds = timestampMilliseconds
        self.message = message
    }
}

public protocol LogSearchAPI: AnyObject {
    /// The events of `logGroup` since `startMilliseconds` that contain `term` (a quoted filter term),
    /// oldest first: the newest `limit` of those on the first `maximumPages` pages.
    func filterLogEvents(logGroup: String, containing term: String, startMilliseconds: Int64, limit: Int) throws(AWSError) -> [LogEvent]
}

public final class CloudWatchLogsClient: LogSearchAPI {
    private let json: JSONProtocolClient
    /// Bounds the search on a very chatty log group; each page holds up to 10,000 events.
    static let maximumPages = 20

    public init(_ client: AWSServiceClient) {
        json = JSONProtocolClient(client: client, targetPrefix: "Logs_20140328")
    }

    public func filterLogEvents(logGroup: String, containing term: String, startMilliseconds: Int64, limit: Int) throws(AWSError) -> [LogEvent] {
        // A quoted term matches the exact text. The terms we search (secret ARNs) hold no quote.
        let pattern = "\"" + String(term.filter { $0 != "\"" }) + "\""
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
        return Array(events.sorted { $0.timestampMilliseconds < $1.timestampMilliseconds }.suffix(limit))
    }
}
