import AWS

/// What a host script is asked to do (docs/host-contract.md).
public enum HostAction: String, Sendable {
    /// Make the login's password the one in the named version (no-op if it already is).
    case set
    /// Log in with the password of the named version.
    case verify

    var successOutcomes: Set<String> {
        switch self {
        case .set: return ["changed", "unchanged"]
        case .verify: return ["verified"]
        }
    }
}

/// One run of an engine's document: the parameters are identifiers only, never a password.
public struct HostCommand: Sendable, Equatable {
    public let action: HostAction
    public let secretArn: String
    public let versionId: String

    public init(action: HostAction, secretArn: String, versionId: String) throws(RotationError) {
        guard Identifiers.isSecretArn(secretArn) else {
            throw .invalidSecret("the secret ARN \(Identifiers.quoted(secretArn, limit: 600)) does not fit the SSM document's SecretId pattern")
        }
        guard Identifiers.isVersionId(versionId) else {
            throw .invalidSecret("version id \(Identifiers.quoted(versionId)) does not fit the SSM document's VersionId pattern")
        }
        self.action = action
        self.secretArn = secretArn
        self.versionId = versionId
    }

    var parameters: [(String, [String])] {
        [("Action", [action.rawValue]), ("SecretId", [secretArn]), ("VersionId", [versionId])]
    }

    /// The script's last line on success, e.g. `ROTATOR-RESULT action=set version=<id> outcome=changed`.
    static let resultPrefix = "ROTATOR-RESULT "

    /// The outcome the script reported for exactly this action and version, if it did.
    func reportedOutcome(in standardOutput: String) -> String? {
        let lines = standardOutput.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        guard let last = lines.last(where: { !$0.allSatisfy(\.isWhitespace) }), last.hasPrefix(HostCommand.resultPrefix) else {
            return nil
        }
        var fields: [Substring: Substring] = [:]
        for pair in last.dropFirst(HostCommand.resultPrefix.count).split(separator: " ") {
            guard let eq = pair.firstIndex(of: "=") else { return nil }
            fields[pair[..<eq]] = pair[pair.index(after: eq)...]
        }
        guard fields["action"] == Substring(action.rawValue), fields["version"] == Substring(versionId),
              let outcome = fields["outcome"], action.successOutcomes.contains(String(outcome)) else { return nil }
        return String(outcome)
    }
}

/// How one instance answered one command.
public struct InstanceResult: Sendable, Equatable {
    public let instanceId: String
    /// SSM's invocation status; `NoAnswer` when none arrived before our deadline, `NotFollowed`
    /// when SSM could not be asked (the command was cancelled in both cases).
    public let status: String
    public let responseCode: Int
    /// The script's reported outcome; `nil` unless the instance succeeded.
    public let outcome: String?
    /// The end of standard error, for the alert and the log.
    public let errorExcerpt: String

    public var succeeded: Bool { outcome != nil }

    /// One line for logs, alerts and the Lambda error.
    public var summary: String {
        if let outcome { return "\(instanceId): \(outcome)" }
        var text = "\(instanceId): \(status), exit code \(responseCode)"
        if status == "Success" && responseCode == 0 { text += ", but no ROTATOR-RESULT line for this action and version" }
        if !errorExcerpt.isEmpty { text += ": \(errorExcerpt)" }
        return text
    }
}
