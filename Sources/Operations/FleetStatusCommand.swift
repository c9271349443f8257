import AWS
import Rotation
import RotatorJSON

/// `rotator status --fleet <shared stack>`: every secret enrolled in a shared rotator stack
/// (template-fleet.yaml), one line each, with the same diagnosis as `status` of one secret.
///
/// The secrets are found by their tag, as the function's policy finds them: ListSecrets gives, page
/// by page, everything a healthy secret's line needs (labels, schedule, last and next rotation,
/// tags, key), so a fleet of 1,000 costs 10 calls and one GetFunctionConfiguration (the fleet's key);
/// only a secret with a pending rotation costs more (its versions' dates, whether the pending
/// version has a value, the function's log), paced.
public struct FleetStatusReport: Sendable {
    /// The tags a unit (template-secret.yaml) gives its secret: the shared stack's name, and the
    /// login, the tag the function pins it by.
    public static let fleetTag = "RotatorFleet"
    public static let loginTag = Rotator.loginPinTag

    public struct Entry: Sendable {
        public let state: SecretState
        public let diagnosis: Diagnosis
        /// Why the shared function cannot rotate this secret although it carries the fleet's tag
        /// (nil: it can). Its role reaches only secrets named under the fleet's prefix, reads and
        /// writes the value only of one with a RotatorLogin tag, and decrypts only with the fleet's
        /// key (threat 38).
        public let outOfReach: String?

        public var login: String? { state.description.tags[FleetStatusReport.loginTag] }
        public var name: String { state.description.name ?? state.description.arn }

        /// The STATE column: the diagnosis, unless there is nothing else to say than that the
        /// function cannot reach the secret.
        public var label: String { isOnlyOutOfReach ? FleetStatusReport.outOfReachLabel : diagnosis.verdict.label }
        /// The same in `--json`'s words, which its counts use.
        public var stateName: String { isOnlyOutOfReach ? FleetStatusReport.outOfReachName : diagnosis.verdict.rawValue }
        private var isOnlyOutOfReach: Bool { outOfReach != nil && diagnosis.verdict == .healthy }
    }

    public static let outOfReachLabel = "OUT OF REACH"
    public static let outOfReachName = "out-of-reach"
    /// Every name a unit gives its secret starts so (template-secret.yaml), and the function's role
    /// allows no other.
    public static func namePrefix(fleet: String) -> String { "rotator/\(fleet)/" }

    /// What the configuration of a secret's rotation function says of the fleet's key.
    public enum FunctionKey: Sendable, Equatable {
        /// It names this key (`SECRET_KEY_ARN`), as every shared function does (template-fleet.yaml).
        case names(String)
        /// It names none: not a shared function (a single stack's, say), or one whose
        /// configuration was changed (threat 38's D). Either way not one that rotates the fleet.
        case namesNone
        /// Not known: no rotation function, or its configuration could not be read.
        case unknown
    }

    static func outOfReach(_ description: SecretDescription, fleet: String, functionKey: FunctionKey) -> String? {
        let prefix = namePrefix(fleet: fleet)
        if !(description.name ?? "").hasPrefix(prefix) {
            return "out of the shared function's reach: not named under \(prefix)"
        }
        if (description.tags[loginTag] ?? "").isEmpty {
            return "out of the shared function's reach: no \(loginTag) tag"
        }
        // The function refuses a tag IAM would read as the pin's (Rotator's requirePinnedLogin).
        if let variant = Rotator.tag(differingOnlyInCaseFrom: loginTag, in: description.tags) {
            return "out of the shared function's reach: a tag \(Identifiers.quoted(variant, limit: 128)) differs from \(loginTag) only in case"
        }
        // A secret made by hand, on aws/secretsmanager or a key of one's own: the role's deny stops
        // every read of its value (OnlyTheFleetsKeyThroughSecretsManager), as the function's check does.
        switch functionKey {
        case .names(let fleetKey) where !Rotator.isEncrypted(description, withFleetKey: fleetKey):
            let used = description.kmsKeyId.map { FleetStatusReport.field($0) } ?? "aws/secretsmanager"
            return "out of the shared function's reach: encrypted with \(used), not the fleet's key \(FleetStatusReport.field(fleetKey))"
        case .namesNone:
            return "out of the shared function's reach: rotated by \(FleetStatusReport.field(description.rotationLambdaArn)), "
                + "which names no fleet key (\(Rotator.fleetKeyVariable)): not a shared function, or its configuration was changed"
        case .names, .unknown:
            return nil
        }
    }

    public let fleet: String
    /// By name.
    public let entries: [Entry]
    /// What is wrong with the fleet as a whole, one sentence each: a rotation function whose
    /// configuration could not be read (its secrets' keys were not compared), or secrets that name
    /// more than one rotation function (a fleet has one shared function).
    public let problems: [String]

    /// `functionKeys`: by rotation function ARN, what its configuration says of the key; a function
    /// missing from it is not known. `unreadFunctions`: by ARN, why a configuration could not be read.
    public init(fleet: String, states: [SecretState], functionKeys: [String: FunctionKey] = [:],
                unreadFunctions: [String: String] = [:]) {
        self.fleet = fleet
        entries = states.map { state in
            let description = state.description
            let functionKey = description.rotationLambdaArn.flatMap { functionKeys[$0] } ?? .unknown
            return Entry(state: state, diagnosis: Diagnosis.of(state, secretId: description.arn),
                         outOfReach: FleetStatusReport.outOfReach(description, fleet: fleet, functionKey: functionKey))
        }
        .sorted { $0.name != $1.name ? $0.name < $1.name : $0.state.description.arn < $1.state.description.arn }
        problems = FleetStatusReport.problems(entries, unreadFunctions: unreadFunctions)
    }

    static func problems(_ entries: [Entry], unreadFunctions: [String: String]) -> [String] {
        var secretsNaming: [String: Int] = [:]
        for entry in entries {
            if let function = entry.state.description.rotationLambdaArn { secretsNaming[function, default: 0] += 1 }
        }
        func counted(_ function: String) -> String {
            let n = secretsNaming[function] ?? 0
            return "\(FleetStatusReport.field(function)) (\(n) secret\(n == 1 ? "" : "s"))"
        }
        var found = unreadFunctions.sorted { $0.key < $1.key }.map { function, why in
            "the configuration of \(counted(function)) could not be read, so its secrets' keys were not compared "
                + "with the fleet's: \(Identifiers.shownOnOneLine(why))"
        }
        if secretsNaming.count > 1 {
            found.append("the fleet's secrets name \(secretsNaming.count) rotation functions, where a fleet has one: "
                + secretsNaming.keys.sorted().map(counted).joined(separator: ", "))
        }
        return found
    }

    /// A fleet without a single secret is most likely a misspelt name: that needs attention too, as
    /// does a problem of the fleet as a whole (a secret shown OK may then be one the function cannot read).
    public var needsAttention: Bool {
        entries.isEmpty || !problems.isEmpty || entries.contains { $0.diagnosis.needsAttention || $0.outOfReach != nil }
    }

    public var lines: [String] {
        guard !entries.isEmpty else {
            return ["no secret carries the tag \(FleetStatusReport.fleetTag)=\(fleet): is \(fleet) the shared stack's name?"]
        }
        let rows = entries.map { entry -> [String] in
            let d = entry.state.description
            // The names and tags are chosen by whoever creates secrets: each is shown as one field
            // that cannot be read as two, nor as a line of its own.
            return [FleetStatusReport.field(entry.name), FleetStatusReport.field(entry.login),
                    d.lastRotatedMilliseconds.map(utcText) ?? "never", d.nextRotationMilliseconds.map(utcText) ?? "-",
                    entry.label, FleetStatusReport.detail(entry)]
        }
        let header = ["NAME", "LOGIN", "LAST ROTATED", "NEXT ROTATION", "STATE", "LAST FAILURE"]
        // Every column as wide as its widest value, but the last, which runs to the end of the line.
        let widths = header.indices.dropLast().map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ fields: [String]) -> String {
            zip(fields, widths).map { $0.padding($1 + 1) }.joined() + fields[fields.count - 1]
        }
        let labels = Diagnosis.Verdict.allCases.map(\.label) + [FleetStatusReport.outOfReachLabel]
        let counts = labels.map { label in "\(entries.filter { $0.label == label }.count) \(label)" }.joined(separator: ", ")
        return [line(header)] + rows.map(line) + ["\(entries.count) secrets in \(fleet): \(counts)"] + problems
    }

    public var json: JSON {
        .object([
            ("fleet", .string(fleet)),
            ("secrets", .array(entries.map { entry in
                StatusReport(state: entry.state, secretId: entry.state.description.arn).json
                    .setting("login", to: entry.login.map(JSON.string) ?? .null)
                    .setting("outOfReach", to: entry.outOfReach.map(JSON.string) ?? .null)
                    .setting("state", to: .string(entry.stateName))
            })),
            // By state, as the lines count them: each secret once.
            ("counts", .object((Diagnosis.Verdict.allCases.map(\.rawValue) + [FleetStatusReport.outOfReachName]).map { name in
                (name, .integer(entries.filter { $0.stateName == name }.count))
            })),
            ("problems", .array(problems.map(JSON.string))),
            ("needsAttention", .bool(needsAttention)),
        ])
    }

    /// A name or tag value as one field of a line: as it is when it is made of the characters of
    /// secret names (and ':'), quoted with its quotes and control characters escaped otherwise
    /// (spaces, which tag values may hold, included). `-` stands for none, so a value `-` is quoted.
    static func field(_ value: String?) -> String {
        guard let value else { return "-" }
        let plain = value != "-" && !value.isEmpty && value.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "/_+=.@:-".unicodeScalars.contains($0)
        }
        return plain ? value : Identifiers.quoted(value, limit: 128)
    }

    /// The last failure the function's log has for the pending version; else, for a secret that
    /// needs attention, what is wrong. The failure's message comes from the log, where a host's
    /// output is quoted: it is shown on one line whatever it holds. A log read in part says so, since
    /// a later failure may be the one missing.
    static func detail(_ entry: Entry) -> String {
        let shown = entry.diagnosis.cause ?? (entry.diagnosis.needsAttention ? entry.diagnosis.summary : nil)
        let logNote = entry.state.logProblem.map { "(the function's log could not be read: \($0))" }
        let parts = [entry.outOfReach.map { shown == nil ? $0 : $0 + ";" }, shown, logNote].compactMap { $0 }
        return parts.isEmpty ? "-" : Identifiers.shownOnOneLine(parts.joined(separator: " "))
    }
}

struct FleetStatusCommand {
    let services: OperatorServices
    let console: Console

    /// The least time between two secrets with a pending rotation, each of which costs a search of
    /// the function's log: FilterLogEvents allows 5 calls a second per account and region, not
    /// adjustable, shared with the console and every other reader of any log group. Two a second
    /// leave them the rest; a fleet with 100 rotations pending takes 50 s.
    static let pendingReadIntervalMilliseconds: Int64 = 500

    func run(fleet: String) throws(OperatorError) -> Int32 {
        let listed = try OperatorError.wrap { () throws(AWSError) in
            try services.secrets.listSecrets(taggedWith: FleetStatusReport.fleetTag, value: fleet)
        }
        // ListSecrets' filters match prefixes and any tag: RotatorFleet=rotator-other, or another
        // tag whose value is the fleet's name, match them too. Only the exact tag enrols a secret.
        let enrolled = listed.filter { $0.tags[FleetStatusReport.fleetTag] == fleet }
        let functions = FunctionSettingsCache(services: services)
        var states: [SecretState] = []
        var functionKeys: [String: FleetStatusReport.FunctionKey] = [:]
        var unreadFunctions: [String: String] = [:]
        var lastPendingRead: Int64?
        for (index, description) in enrolled.enumerated() {
            console.progress("status: secret \(index + 1) of \(enrolled.count)", milestone: false)
            // The key the function is configured with (template-fleet.yaml's, as its role's deny
            // names it), one call per function: every secret of a fleet names the same one.
            if let functionArn = description.rotationLambdaArn, functionKeys[functionArn] == nil {
                do {
                    let key = try functions.settings(functionArn).environment[Rotator.fleetKeyVariable] ?? ""
                    functionKeys[functionArn] = key.isEmpty ? .namesNone : .names(key)
                } catch {
                    functionKeys[functionArn] = .unknown
                    unreadFunctions[functionArn] = error.description
                }
            }
            if description.unfinishedRotationVersion != nil {
                if let lastPendingRead {
                    services.clock.sleep(milliseconds: lastPendingRead + FleetStatusCommand.pendingReadIntervalMilliseconds
                        - services.clock.nowMilliseconds)
                }
                lastPendingRead = services.clock.nowMilliseconds
            }
            states.append(try OperatorError.wrap { () throws(AWSError) in
                try SecretState.read(described: description, services: services, rotationFunction: functions.settings,
                                     alwaysReadDates: false)
            })
        }
        let report = FleetStatusReport(fleet: fleet, states: states, functionKeys: functionKeys, unreadFunctions: unreadFunctions)
        if console.json {
            console.document(report.json)
        } else {
            report.lines.forEach(console.line)
        }
        return report.needsAttention ? Operator.ExitCode.attention : Operator.ExitCode.pass
    }
}

/// The rotation functions' configurations, each read once: every secret of a fleet names the same
/// function. A failure is kept too, so a missing permission costs one call, not one per secret.
final class FunctionSettingsCache {
    private let services: OperatorServices
    private var read: [String: Result<FunctionSettings, AWSError>] = [:]

    init(services: OperatorServices) { self.services = services }

    func settings(_ functionArn: String) throws(AWSError) -> FunctionSettings {
        if let known = read[functionArn] { return try known.get() }
        let result: Result<FunctionSettings, AWSError>
        do { result = .success(try services.rotationFunction(functionArn)) } catch { result = .failure(error) }
        read[functionArn] = result
        return try result.get()
    }
}
