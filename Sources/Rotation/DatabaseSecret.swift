import JSON

/// The database engines, each changed on its host by its own SSM document.
public enum Engine: String, Sendable, CaseIterable {
    case postgres, mysql, sqlserver

    /// The function's environment variable naming this engine's SSM document.
    public var documentVariable: String { rawValue.uppercased() + "_DOCUMENT" }

    /// The SSM platform type of the hosts this engine's document runs on.
    public var platformType: String { self == .sqlserver ? "Windows" : "Linux" }

    /// The names a secret may use; `mariadb` and `postgresql` are what people (and RDS) write.
    public init?(secretValue: String) {
        switch secretValue.lowercased() {
        case "postgres", "postgresql": self = .postgres
        case "mysql", "mariadb": self = .mysql
        case "sqlserver": self = .sqlserver
        default: return nil
        }
    }
}

/// The secret's JSON, validated: `engine`, `host`, `port`, `username`, `password`, `dbname`,
/// `instanceIds`, plus whatever other fields the owner keeps there (copied untouched).
public struct DatabaseSecret: Sendable {
    public let engine: Engine
    public let username: String
    public let instanceIds: [String]
    /// The document as stored, to copy from when creating the next version.
    public let json: JSON

    /// SSM accepts at most 50 instance ids per command.
    static let maximumInstances = 50

    public static func parse(_ secretString: String?) throws(RotationError) -> DatabaseSecret {
        guard let secretString else { throw .invalidSecret("the secret version holds no SecretString") }
        let json: JSON
        do {
            json = try JSON.parse(secretString)
        } catch {
            // The parse error names a byte offset, never the text around it: that may be a password.
            throw .invalidSecret("the secret is not valid JSON (\(error))")
        }
        guard json.objectValue != nil else { throw .invalidSecret("the secret is not a JSON object") }
        func requiredString(_ field: String) throws(RotationError) -> String {
            guard let value = json[field] else { throw .invalidSecret("the secret has no \"\(field)\" field") }
            guard let text = value.stringValue, !text.isEmpty else {
                throw .invalidSecret("the secret's \"\(field)\" is not a non-empty string")
            }
            return text
        }
        let engineName = try requiredString("engine")
        guard let engine = Engine(secretValue: engineName) else {
            throw .invalidSecret("unknown engine \(Identifiers.quoted(engineName)); expected postgres, mysql, mariadb or sqlserver")
        }
        _ = try requiredString("host")
        _ = try requiredString("password")
        let username = try requiredString("username")
        guard username.unicodeScalars.count <= 128, !username.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidSecret("the secret's \"username\" is longer than 128 characters or holds control characters")
        }
        if let port = json["port"] {
            let number = port.intValue ?? port.stringValue.flatMap { Int($0) }
            guard let number, (1...65535).contains(number) else {
                throw .invalidSecret("the secret's \"port\" is not a port number")
            }
        }
        if let dbname = json["dbname"], dbname.stringValue == nil {
            throw .invalidSecret("the secret's \"dbname\" is not a string")
        }
        guard let ids = json["instanceIds"]?.arrayValue else {
            throw .invalidSecret("the secret has no \"instanceIds\" list of EC2 instance ids")
        }
        var instanceIds: [String] = []
        for id in ids {
            guard let text = id.stringValue, Identifiers.isInstanceId(text) else {
                throw .invalidSecret("instanceIds holds \(Identifiers.quoted(id.stringValue ?? id.serialized)), which is not an instance id (i-0123456789abcdef0)")
            }
            if !instanceIds.contains(text) { instanceIds.append(text) }
        }
        guard (1...maximumInstances).contains(instanceIds.count) else {
            throw .invalidSecret("instanceIds must name 1 to \(maximumInstances) instances")
        }
        return DatabaseSecret(engine: engine, username: username, instanceIds: instanceIds, json: json)
    }

    /// The JSON text of the next version: this one with a new password, every other field as it was.
    public func replacingPassword(with password: String) -> String {
        json.setting("password", to: .string(password)).serialized
    }
}
