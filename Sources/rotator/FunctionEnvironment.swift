import Rotation

/// The function's own settings, read from its environment variables (declared in template.yaml).
struct FunctionEnvironment {
    let documents: [Engine: String]
    let alertTopicArn: String?
    let passwordPolicy: PasswordPolicy
    /// LOGIN_TAG: in the shared layout, the secret tag every secret must carry to pin its login
    /// (Rotator; `Rotator.loginPinTag` pins wherever a secret carries it, whatever this says).
    let loginTag: String?
    /// SECRET_KEY_ARN: in the shared layout, the key every enrolled secret is encrypted with (Rotator).
    let secretKeyArn: String?
    /// HOST_POLL_MILLISECONDS: the pace at which a host command's result is polled (HostRunner).
    let hostPollMilliseconds: Int64

    static let documentVariables: [(Engine, String)] = Engine.allCases.map { ($0, $0.documentVariable) }

    init(environment: [String: String]) throws(RotationError) {
        var documents: [Engine: String] = [:]
        for (engine, variable) in FunctionEnvironment.documentVariables {
            if let name = environment[variable], !name.isEmpty { documents[engine] = name }
        }
        guard !documents.isEmpty else {
            throw .configuration("no SSM document configured: set at least one of "
                + FunctionEnvironment.documentVariables.map(\.1).joined(separator: ", "))
        }
        self.documents = documents
        alertTopicArn = environment["SNS_TOPIC_ARN"].flatMap { $0.isEmpty ? nil : $0 }
        var length = PasswordPolicy.defaultLength
        if let text = environment["PASSWORD_LENGTH"], !text.isEmpty {
            guard let value = Int(text) else { throw .configuration("PASSWORD_LENGTH is not a number") }
            length = value
        }
        loginTag = environment["LOGIN_TAG"].flatMap { $0.isEmpty ? nil : $0 }
        secretKeyArn = environment[Rotator.fleetKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
        hostPollMilliseconds = try FunctionEnvironment.hostPollMilliseconds(environment["HOST_POLL_MILLISECONDS"])
        passwordPolicy = try PasswordPolicy(length: length, excludeCharacters: environment["EXCLUDE_CHARACTERS"] ?? "")
    }

    static func hostPollMilliseconds(_ text: String?) throws(RotationError) -> Int64 {
        guard let text, !text.isEmpty else { return HostRunner.defaultPollMilliseconds }
        let range = HostRunner.pollMillisecondsRange
        guard text.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int64(text), range.contains(value) else {
            throw .configuration("HOST_POLL_MILLISECONDS must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
