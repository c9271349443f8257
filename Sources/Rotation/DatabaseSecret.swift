import RotatorJSON

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

    /// How long the secret's `username` or `dbname` may be, as the engine's host script measures
    /// it (hosts/secret-cases.json holds the cases both must agree on): PostgreSQL's NAMEDATALEN - 1
    /// bytes; 80 characters for a MySQL/MariaDB user (MariaDB's limit; Oracle MySQL's server itself
    /// refuses more than 32) and 64 for a database; SQL Server's `sysname`, nvarchar(128).
    func fieldLength(_ field: String, of text: String) -> (length: Int, limit: Int, unit: String) {
        switch self {
        case .postgres: return (text.utf8.count, 63, "bytes")
        case .mysql: return (text.unicodeScalars.count, field == "username" ? 80 : 64, "characters")
        case .sqlserver: return (text.utf16.count, 128, "UTF-16 code units")
        }
    }

    /// The longest login name the engine (and whatever else names the login) accepts, and how the
    /// name is measured: PostgreSQL's NAMEDATALEN - 1 bytes; 32 characters, Oracle MySQL's limit
    /// (MariaDB allows 80, but the same secret must work on both); SQL Server's `sysname`,
    /// nvarchar(128).
    func loginNameLength(_ name: String) -> (length: Int, limit: Int, unit: String) {
        switch self {
        case .postgres: return (name.utf8.count, 63, "bytes")
        case .mysql: return (name.unicodeScalars.count, 32, "characters")
        case .sqlserver: return (name.utf16.count, 128, "UTF-16 code units")
        }
    }
}

/// The secret's JSON, validated: `engine`, `host`, `port`, `username`, `password`, `dbname`,
/// `instanceIds`, an optional `masterarn`, plus whatever other fields the owner keeps there (copied
/// untouched).
public struct DatabaseSecret: Sendable {
    public let engine: Engine
    public let username: String
    public let instanceIds: [String]
    /// The ARN of a secret holding an administrator login. When present, rotations alternate between
    /// two logins, `name` and `name_clone`: each sets a new password on the one that is not current,
    /// so the one applications hold keeps working (docs/host-contract.md). Absent: single user.
    public let masterArn: String?
    /// `"passwordPlaceholder": true`: the password is one no host ever had (the stack's deployment
    /// wrote a random one, docs/deploying.md), so a failed rotation has nothing to restore and must
    /// leave the hosts' own password alone. The next version drops the field.
    public let passwordIsPlaceholder: Bool
    /// The document as stored, to copy from when creating the next version.
    public let json: JSON

    /// SSM accepts at most 50 instance ids per command.
    static let maximumInstances = 50

    /// The field that marks a placeholder password (`passwordIsPlaceholder`).
    static let placeholderField = "passwordPlaceholder"

    /// Suffix of the second login of the alternating-users strategy, as in AWS's multi-user templates.
    static let cloneSuffix = "_clone"

    /// `secretArn`, when given, is the ARN of the secret this value belongs to: `masterarn` must name
    /// another secret.
    public static func parse(_ secretString: String?, secretArn: String? = nil) throws(RotationError) -> DatabaseSecret {
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
        // What the host scripts refuse, refused here first: the same rules (hosts/secret-cases.json).
        func refuseUnusable(_ field: String, _ text: String) throws(RotationError) {
            guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw .invalidSecret("the secret's \"\(field)\" holds control characters")
            }
            guard field != "password" else { return }
            let (length, limit, unit) = engine.fieldLength(field, of: text)
            guard length <= limit else {
                throw .invalidSecret("the secret's \"\(field)\" is \(length) \(unit) long, more than the \(limit) \(engine.rawValue) allows")
            }
        }
        try refuseUnusable("password", try requiredString("password"))
        let username = try requiredString("username")
        try refuseUnusable("username", username)
        // Absent, null or empty: the engine's default port. Else a number, or the digits of one.
        if let port = json["port"], port != .null, port != .string("") {
            var number: Int?
            if case .string(let digits) = port {
                number = (1...5).contains(digits.utf8.count) && digits.utf8.allSatisfy({ (48...57).contains($0) }) ? Int(digits) : nil
            } else {
                number = port.intValue
            }
            guard let number, (1...65535).contains(number) else {
                throw .invalidSecret("the secret's \"port\" is not a port number")
            }
        }
        if let dbname = json["dbname"], dbname != .null {
            guard let text = dbname.stringValue else { throw .invalidSecret("the secret's \"dbname\" is not a string") }
            if !text.isEmpty { try refuseUnusable("dbname", text) }
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
        var masterArn: String?
        if let master = json["masterarn"] {
            guard let text = master.stringValue, Identifiers.isSecretArn(text) else {
                throw .invalidSecret("the secret's \"masterarn\" is \(Identifiers.quoted(master.stringValue ?? master.serialized)), "
                    + "which is not the ARN of a secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>)")
            }
            // A partial ARN (no random suffix) names the same secret as the full one.
            if let secretArn, text == secretArn || (secretArn.hasPrefix(text + "-") && secretArn.count == text.count + 7) {
                throw .invalidSecret("the secret's \"masterarn\" names the secret itself; it must name the secret of an administrator login")
            }
            masterArn = text
        }
        var passwordIsPlaceholder = false
        if let marker = json[placeholderField] {
            guard case .bool(let value) = marker else {
                throw .invalidSecret("the secret's \"\(placeholderField)\" is not true or false")
            }
            passwordIsPlaceholder = value
        }
        return DatabaseSecret(engine: engine, username: username, instanceIds: instanceIds, masterArn: masterArn,
                              passwordIsPlaceholder: passwordIsPlaceholder, json: json)
    }

    /// The JSON text of the next version: this one with a new password, every other field as it
    /// was but the placeholder mark (the new password is a real one).
    public func replacingPassword(with password: String) -> String {
        json.removing(DatabaseSecret.placeholderField).setting("password", to: .string(password)).serialized
    }

    /// The login the next version names: with `masterarn`, the other one of the pair (`name` <->
    /// `name_clone`); without, the same one.
    public func nextUsername() throws(RotationError) -> String {
        guard masterArn != nil else { return username }
        let other = username.hasSuffix(DatabaseSecret.cloneSuffix)
            ? String(username.dropLast(DatabaseSecret.cloneSuffix.count))
            : username + DatabaseSecret.cloneSuffix
        guard !other.isEmpty else {
            throw .invalidSecret("the secret's \"username\" is \"\(DatabaseSecret.cloneSuffix)\": alternating users needs a name before the suffix")
        }
        // Both logins are SQL Server logins (SQL authentication), which a backslash cannot name:
        // `DOMAIN\name` is a Windows account, whose password no SQL statement sets.
        if engine == .sqlserver, username.contains("\\") {
            throw .invalidSecret("alternating users on SQL Server rotates two SQL Server logins; \(Identifiers.quoted(username)) "
                + "names a Windows account (DOMAIN\\name), whose password SQL Server cannot set")
        }
        let (length, limit, unit) = engine.loginNameLength(other)
        guard length <= limit else {
            throw .invalidSecret("alternating users: the second login, the username + \"\(DatabaseSecret.cloneSuffix)\" \(Identifiers.quoted(other)), would be \(length) \(unit) long, "
                + "more than the \(limit) \(engine.rawValue) allows; choose a username at most \(limit - DatabaseSecret.cloneSuffix.count) \(unit) long")
        }
        return other
    }

    /// Refuses this version as the pending one unless it acts for the same target as `current`, the
    /// AWSCURRENT version: whoever may write a version must not thereby choose which login, which
    /// hosts, which engine's document or which administrator the function acts for (a confused
    /// deputy). As AWS's rotation templates: the login is AWSCURRENT's own (single user) or its
    /// alternate, exactly as `nextUsername` picks it (alternating users: `name` <-> `name_clone`;
    /// never the same login, never any other); and `masterarn`, `engine`, `host` and `instanceIds`
    /// are AWSCURRENT's. Texts compare by Unicode scalars, as the host and the database compare
    /// them, not by Swift's canonical equivalence. The message names the field and may name logins,
    /// engines, hosts, instance ids and ARNs; never a password.
    public func requireSameTarget(as current: DatabaseSecret) throws(RotationError) {
        func same(_ a: String?, _ b: String?) -> Bool {
            switch (a, b) {
            case (nil, nil): return true
            case let (a?, b?): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
            default: return false
            }
        }
        func shown(_ s: String?) -> String { s.map { Identifiers.quoted($0, limit: 256) } ?? "none" }
        guard same(masterArn, current.masterArn) else {
            throw .invalidSecret("AWSPENDING's \"masterarn\" (\(shown(masterArn))) differs from AWSCURRENT's (\(shown(current.masterArn))): "
                + "a pending version may not change the administrator or the strategy; nothing was sent to the hosts")
        }
        let engineText = json["engine"]?.stringValue, currentEngineText = current.json["engine"]?.stringValue
        guard engine == current.engine, same(engineText, currentEngineText) else {
            throw .invalidSecret("AWSPENDING's \"engine\" (\(shown(engineText))) differs from AWSCURRENT's (\(shown(currentEngineText))): "
                + "a pending version may not change the engine; nothing was sent to the hosts")
        }
        guard instanceIds == current.instanceIds else {
            throw .invalidSecret("AWSPENDING's \"instanceIds\" (\(instanceIds.joined(separator: ", "))) differ from AWSCURRENT's "
                + "(\(current.instanceIds.joined(separator: ", "))): a pending version may not change the hosts; nothing was sent to the hosts")
        }
        let host = json["host"]?.stringValue, currentHost = current.json["host"]?.stringValue
        guard same(host, currentHost) else {
            throw .invalidSecret("AWSPENDING's \"host\" (\(shown(host))) differs from AWSCURRENT's (\(shown(currentHost))): "
                + "a pending version may not change the database host; nothing was sent to the hosts")
        }
        if current.masterArn == nil {
            guard same(username, current.username) else {
                throw .invalidSecret("AWSPENDING's \"username\" (\(shown(username))) differs from AWSCURRENT's (\(shown(current.username))): "
                    + "without masterarn a rotation changes the password of AWSCURRENT's login only; nothing was sent to the hosts")
            }
        } else {
            let alternate = try current.nextUsername()
            guard same(username, alternate) else {
                throw .invalidSecret("AWSPENDING's \"username\" (\(shown(username))) is not the alternate of AWSCURRENT's (\(shown(current.username))): "
                    + "with alternating users it must be \(shown(alternate)); nothing was sent to the hosts")
            }
        }
    }

    /// The JSON text of the next version: a new password and the next login (`nextUsername`),
    /// every other field as it was.
    public func nextVersion(password: String) throws(RotationError) -> String {
        let next = try nextUsername()
        guard next != username else { return replacingPassword(with: password) }
        return json.removing(DatabaseSecret.placeholderField).setting("password", to: .string(password))
            .setting("username", to: .string(next)).serialized
    }
}
