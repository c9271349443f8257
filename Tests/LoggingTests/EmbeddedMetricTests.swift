import RotatorJSON
import RotatorLogging
import Testing

/// The rules of the CloudWatch Embedded Metric Format specification, checked on a parsed line:
/// `_aws` with a numeric `Timestamp` (ms) and a `CloudWatchMetrics` list of directives; each
/// directive a `Namespace` (1-255 characters), `Dimensions` (a list of dimension sets of at most 30
/// names, each the name of a string member of the root), `Metrics` (at most 100, each a `Name` that
/// is a numeric root member and a `Unit` from CloudWatch's list).
func emfViolations(_ line: String) -> [String] {
    guard let root = try? JSON.parse(line), root.objectValue != nil else { return ["not a JSON object"] }
    var problems: [String] = []
    guard let metadata = root["_aws"], metadata.objectValue != nil else { return ["no _aws object"] }
    guard case .number(let timestamp)? = metadata["Timestamp"], Int64(timestamp) != nil else { return ["Timestamp is not an integer"] }
    guard let directives = metadata["CloudWatchMetrics"]?.arrayValue, !directives.isEmpty else { return ["no CloudWatchMetrics"] }
    let units: Set<String> = ["Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
                              "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
                              "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
                              "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"]
    for directive in directives {
        guard let namespace = directive["Namespace"]?.stringValue, (1...255).contains(namespace.count) else {
            problems.append("bad Namespace"); continue
        }
        for set in directive["Dimensions"]?.arrayValue ?? [.null] {
            guard let names = set.arrayValue, names.count <= 30 else { problems.append("bad dimension set"); continue }
            for name in names {
                guard let key = name.stringValue, let value = root[key]?.stringValue, !value.isEmpty, value.count <= 1024 else {
                    problems.append("dimension \(name.serialized) is not a non-empty string member"); continue
                }
            }
        }
        let metrics = directive["Metrics"]?.arrayValue ?? []
        if metrics.isEmpty || metrics.count > 100 { problems.append("bad Metrics count") }
        for metric in metrics {
            guard let name = metric["Name"]?.stringValue, case .number(let text)? = root[name], Double(text) != nil else {
                problems.append("metric \(metric.serialized) is not a number member"); continue
            }
            if let unit = metric["Unit"]?.stringValue, !units.contains(unit) { problems.append("unit \(unit)") }
        }
    }
    return problems
}

@Suite struct EmbeddedMetricTests {
    @Test func aLineFollowsTheSpecification() throws {
        let line = EmbeddedMetricLine(
            namespace: "SecretsRotator", timestampMilliseconds: 1_800_000_000_123,
            directives: [.init(dimensionSets: [["Step"], ["Step", "Outcome"]], metrics: [("StepDuration", .milliseconds)]),
                         .init(dimensionSets: [[]], metrics: [("Failures", .count)])],
            strings: [("Step", "setSecret"), ("Outcome", "Failure"), ("SecretId", "arn:x")],
            values: [("StepDuration", 1234), ("Failures", 1)]).serialized
        #expect(emfViolations(line) == [])
        #expect(!line.contains("\n"))
        let json = try JSON.parse(line)
        #expect(json["_aws"]?["Timestamp"] == .number("1800000000123"))
        #expect(json["_aws"]?["CloudWatchMetrics"]?.arrayValue?[0]["Namespace"] == .string("SecretsRotator"))
        #expect(json["_aws"]?["CloudWatchMetrics"]?.arrayValue?[0]["Dimensions"] == .array([.array([.string("Step")]),
                                                                               .array([.string("Step"), .string("Outcome")])]))
        #expect(json["_aws"]?["CloudWatchMetrics"]?.arrayValue?[0]["Metrics"] == .array([.object([("Name", .string("StepDuration")),
                                                                                     ("Unit", .string("Milliseconds"))])]))
        #expect(json["_aws"]?["CloudWatchMetrics"]?.arrayValue?[1]["Dimensions"] == .array([.array([])]))
        #expect(json["StepDuration"] == .number("1234"))
        #expect(json["SecretId"] == .string("arn:x"))
    }

    @Test func theCheckerCatchesWhatTheSpecificationForbids() {
        #expect(!emfViolations(#"{"_aws":{"CloudWatchMetrics":[]}}"#).isEmpty)
        #expect(!emfViolations(#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Step"]],"Metrics":[{"Name":"D"}]}]},"D":1}"#).isEmpty)
        #expect(!emfViolations(#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"D","Unit":"ms"}]}]},"D":1}"#).isEmpty)
        #expect(!emfViolations(#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"D"}]}]},"D":"1"}"#).isEmpty)
    }
}
