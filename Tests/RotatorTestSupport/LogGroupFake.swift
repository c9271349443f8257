import AWS
import RotatorJSON

/// A log group's events as a fake's FilterLogEvents answers for them: what CloudWatch Logs answers
/// for `{ $.member = "value" }`, the events that are JSON objects whose root member is that string
/// exactly (not those that merely contain it), since `startMilliseconds`, the newest `limit`. Every
/// search it answered is kept, to assert on what was asked.
public final class LogGroupFake {
    public var events: [LogEvent] = []
    public private(set) var searches: [(member: String, value: String)] = []

    public init() {}

    public func search(member: String, equals value: String, startMilliseconds: Int64, limit: Int) -> LogSearch {
        searches.append((member, value))
        let matching = events.filter { event in
            guard event.timestampMilliseconds >= startMilliseconds, let line = try? JSON.parse(event.message) else { return false }
            return line[member]?.stringValue == value
        }
        return LogSearch(events: Array(matching.suffix(limit)),
                         incompleteBecause: matching.count > limit ? "only the newest \(limit) of \(matching.count) matching events were kept" : nil)
    }
}
