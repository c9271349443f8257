import AWS
import RotatorJSON

/// `rotator status`: the secret's versions and schedule, and the diagnosis.
public struct StatusReport: Sendable {
    public let state: SecretState
    public let diagnosis: Diagnosis

    public init(state: SecretState, secretId: String) {
        self.state = state
        diagnosis = Diagnosis.of(state, secretId: secretId)
    }

    public var lines: [String] {
        let d = state.description
        var lines = ["secret".padding(16) + d.arn]
        if state.rotationConfigured || d.rotationEnabled == true {
            let window = d.rotationSchedule?.duration.map { ", window \($0)" } ?? ""
            lines.append("rotation".padding(16) + "enabled: \(d.rotationSchedule?.summary ?? "no schedule")\(window)")
        } else {
            lines.append("rotation".padding(16) + "NOT enabled")
        }
        lines.append("function".padding(16) + (d.rotationLambdaArn ?? "-"))
        lines.append("last rotated".padding(16) + (d.lastRotatedMilliseconds.map(utcText) ?? "never"))
        lines.append("next rotation".padding(16) + (d.nextRotationMilliseconds.map(utcText) ?? "-"))
        lines.append("versions")
        for version in state.versions {
            let created = version.createdMilliseconds.map { "  created \(utcText($0))" } ?? ""
            lines.append("  " + version.versionId.padding(40) + version.stages.joined(separator: ",").padding(24) + created)
        }
        if state.versions.isEmpty { lines.append("  (none labelled)") }
        if let problem = state.versionsProblem { lines.append("  (creation dates unavailable: \(problem))") }
        lines.append("state".padding(16) + "\(diagnosis.verdict.label): \(diagnosis.summary)")
        if let cause = diagnosis.cause { lines.append("last failure".padding(16) + cause) }
        for (index, advice) in diagnosis.advice.enumerated() {
            lines.append((index == 0 ? "what to do" : "").padding(16) + "- " + advice)
        }
        return lines
    }

    public var json: JSON {
        let d = state.description
        func optional(_ text: String?) -> JSON { text.map(JSON.string) ?? .null }
        func time(_ ms: Int64?) -> JSON { ms.map { .string(utcText($0)) } ?? .null }
        let failure = state.lastFailure.map { f in
            JSON.object([("step", .string(f.step)), ("reason", optional(f.reason)), ("message", optional(f.message)),
                         ("at", .string(utcText(f.atMilliseconds)))])
        } ?? .null
        return .object([
            ("secretArn", .string(d.arn)),
            ("name", optional(d.name)),
            ("rotationEnabled", d.rotationEnabled.map(JSON.bool) ?? .null),
            ("rotationFunction", optional(d.rotationLambdaArn)),
            ("schedule", optional(d.rotationSchedule?.summary)),
            ("window", optional(d.rotationSchedule?.duration)),
            ("lastRotated", time(d.lastRotatedMilliseconds)),
            ("nextRotation", time(d.nextRotationMilliseconds)),
            ("versions", .array(state.versions.map { v in
                .object([("versionId", .string(v.versionId)), ("stages", .array(v.stages.map(JSON.string))),
                         ("created", time(v.createdMilliseconds))])
            })),
            ("currentVersion", optional(state.currentVersion)),
            ("pendingVersion", optional(state.pendingVersion)),
            ("pendingHasValue", state.pendingHasValue.map(JSON.bool) ?? .null),
            ("lastFailure", failure),
            ("logProblem", optional(state.logProblem)),
            ("verdict", .string(diagnosis.verdict.rawValue)),
            ("summary", .string(diagnosis.summary)),
            ("advice", .array(diagnosis.advice.map(JSON.string))),
        ])
    }
}

struct StatusCommand {
    let services: OperatorServices
    let console: Console

    func run(secretId: String) throws(OperatorError) -> Int32 {
        let state = try OperatorError.wrap { () throws(AWSError) in try SecretState.read(secretId, services: services) }
        let report = StatusReport(state: state, secretId: secretId)
        if console.json {
            console.document(report.json)
        } else {
            report.lines.forEach(console.line)
        }
        return report.diagnosis.needsAttention ? 1 : 0
    }
}
