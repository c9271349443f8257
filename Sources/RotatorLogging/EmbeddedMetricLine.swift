import RotatorJSON

/// One CloudWatch Embedded Metric Format line: a JSON object CloudWatch Logs turns into metrics
/// as it receives it, so dashboards and alarms need no log parsing.
///
/// Layout (CloudWatch EMF specification): `_aws` holds `Timestamp` (milliseconds since the epoch)
/// and `CloudWatchMetrics`, a list of directives, each naming a `Namespace`, its dimension sets and
/// metrics; every dimension a directive names is a string member of the root object, every metric a
/// number member. Other root members are properties: logged and searchable, not metrics.
public struct EmbeddedMetricLine: Sendable {
    public enum Unit: String, Sendable { case milliseconds = "Milliseconds", count = "Count" }

    public struct Directive: Sendable {
        public let dimensionSets: [[String]]
        public let metrics: [(name: String, unit: Unit)]

        public init(dimensionSets: [[String]], metrics: [(name: String, unit: Unit)]) {
            self.dimensionSets = dimensionSets
            self.metrics = metrics
        }
    }

    public let namespace: String
    public let timestampMilliseconds: Int64
    public let directives: [Directive]
    /// Dimension values and properties, all strings.
    public let strings: [(String, String)]
    public let values: [(String, Int64)]

    public init(namespace: String, timestampMilliseconds: Int64, directives: [Directive],
                strings: [(String, String)], values: [(String, Int64)]) {
        self.namespace = namespace
        self.timestampMilliseconds = timestampMilliseconds
        self.directives = directives
        self.strings = strings
        self.values = values
    }

    /// The `Timestamp` of a line this type wrote, read back from its parsed JSON.
    public static func timestampMilliseconds(of line: JSON) -> Int64? {
        guard case .number(let timestamp)? = line["_aws"]?["Timestamp"] else { return nil }
        return Int64(timestamp)
    }

    public var serialized: String {
        let directiveObjects = directives.map { directive in
            JSON.object([
                ("Namespace", .string(namespace)),
                ("Dimensions", .array(directive.dimensionSets.map { .array($0.map(JSON.string)) })),
                ("Metrics", .array(directive.metrics.map {
                    .object([("Name", .string($0.name)), ("Unit", .string($0.unit.rawValue))])
                })),
            ])
        }
        let metadata = JSON.object([
            ("Timestamp", .number(String(timestampMilliseconds))),
            ("CloudWatchMetrics", .array(directiveObjects)),
        ])
        return JSON.object([("_aws", metadata)] + strings.map { ($0.0, .string($0.1)) }
            + values.map { ($0.0, .number(String($0.1))) }).serialized
    }
}
