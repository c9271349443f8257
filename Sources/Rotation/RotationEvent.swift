import RotatorJSON

/// The four steps Secrets Manager invokes, in order, with one token.
public enum RotationStep: String, CaseIterable, Sendable {
    case createSecret, setSecret, testSecret, finishSecret
}

/// A validated rotation event. Built before anything else happens, so a malformed event never
/// reaches AWS or a host.
public struct RotationEvent: Sendable {
    public let step: RotationStep
    public let secretId: String
    /// The `ClientRequestToken`: the version id of the new secret version.
    public let token: String
    /// Sensitive: passed to `PutSecretValue` and nowhere else; never logged.
    public let rotationToken: String?

    public init(step: RotationStep, secretId: String, token: String, rotationToken: String?) {
        self.step = step
        self.secretId = secretId
        self.token = token
        self.rotationToken = rotationToken
    }

    public static func parse(_ body: [UInt8]) throws(RotationError) -> RotationEvent {
        let json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            throw .invalidEvent("the event is not JSON (\(error))")
        }
        guard json.objectValue != nil else { throw .invalidEvent("the event is not a JSON object") }
        func string(_ field: String) throws(RotationError) -> String {
            guard let value = json[field] else { throw .invalidEvent("the event has no \(field)") }
            guard let text = value.stringValue else { throw .invalidEvent("\(field) is not a string") }
            return text
        }
        let stepName = try string("Step")
        guard let step = RotationStep(rawValue: stepName) else {
            throw .invalidEvent("unknown Step \(Identifiers.quoted(stepName)); expected one of "
                + RotationStep.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let secretId = try string("SecretId")
        guard (1...2048).contains(secretId.utf8.count), !secretId.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw .invalidEvent("SecretId is empty, too long or holds control characters")
        }
        let token = try string("ClientRequestToken")
        guard Identifiers.isVersionId(token) else {
            throw .invalidEvent("ClientRequestToken is not a version id (32 to 64 letters, digits or '-')")
        }
        var rotationToken: String?
        if let value = json["RotationToken"], value != .null {
            guard let text = value.stringValue else { throw .invalidEvent("RotationToken is not a string") }
            rotationToken = text
        }
        return RotationEvent(step: step, secretId: secretId, token: token, rotationToken: rotationToken)
    }
}
