import RotatorJSON

public struct SecretDescription: Sendable, Equatable {
    public let arn: String
    /// `nil` when the field is absent, which is not the same as disabled.
    public let rotationEnabled: Bool?
    public let versionIdsToStages: [String: [String]]
    /// What the operator commands show; the rotation steps do not need them.
    public let name: String?
    public let rotationLambdaArn: String?
    public let rotationSchedule: RotationSchedule?
    /// Milliseconds since the Unix epoch.
    public let lastRotatedMilliseconds: Int64?
    public let nextRotationMilliseconds: Int64?
    /// The secret's tags, key -> value. In the shared (fleet) layout one of them pins the login a
    /// version may name (RotatorLogin); only the secret's administrators may change its tags.
    public let tags: [String: String]
    /// The KMS key that encrypts the secret's value, as Secrets Manager names it (a key ID, a key
    /// ARN or an alias ARN); nil when the secret uses the account's aws/secretsmanager key.
    public let kmsKeyId: String?

    public init(arn: String, rotationEnabled: Bool?, versionIdsToStages: [String: [String]], name: String? = nil,
                rotationLambdaArn: String? = nil, rotationSchedule: RotationSchedule? = nil,
                lastRotatedMilliseconds: Int64? = nil, nextRotationMilliseconds: Int64? = nil, tags: [String: String] = [:],
                kmsKeyId: String? = nil) {
        self.arn = arn
        self.rotationEnabled = rotationEnabled
        self.versionIdsToStages = versionIdsToStages
        self.name = name
        self.rotationLambdaArn = rotationLambdaArn
        self.rotationSchedule = rotationSchedule
        self.lastRotatedMilliseconds = lastRotatedMilliseconds
        self.nextRotationMilliseconds = nextRotationMilliseconds
        self.tags = tags
        self.kmsKeyId = kmsKeyId
    }

    /// The version that holds `stage`, if any.
    public func version(holding stage: String) -> String? {
        versionIdsToStages.first { $0.value.contains(stage) }?.key
    }
}

extension SecretDescription {
    /// DescribeSecret's answer, or one entry of ListSecrets' SecretList: the same members but for
    /// the version stages' (`stagesMember`).
    init(parsing out: JSON, operation: String, stagesMember: String) throws(AWSError) {
        guard let arn = out["ARN"]?.stringValue else {
            throw .malformedResponse(operation: operation, reason: "no ARN")
        }
        var stages: [String: [String]] = [:]
        for (version, labels) in out[stagesMember]?.objectValue ?? [] {
            stages[version] = labels.arrayValue?.compactMap(\.stringValue) ?? []
        }
        var tags: [String: String] = [:]
        for tag in out["Tags"]?.arrayValue ?? [] {
            guard let key = tag["Key"]?.stringValue, let value = tag["Value"]?.stringValue else {
                throw .malformedResponse(operation: operation, reason: "a tag without Key or Value")
            }
            tags[key] = value
        }
        var schedule: RotationSchedule?
        if let rules = out["RotationRules"], rules.objectValue != nil {
            schedule = RotationSchedule(scheduleExpression: rules["ScheduleExpression"]?.stringValue,
                                        automaticallyAfterDays: rules["AutomaticallyAfterDays"]?.intValue,
                                        duration: rules["Duration"]?.stringValue)
        }
        self.init(
            arn: arn, rotationEnabled: out["RotationEnabled"]?.boolValue, versionIdsToStages: stages,
            name: out["Name"]?.stringValue, rotationLambdaArn: out["RotationLambdaARN"]?.stringValue,
            rotationSchedule: schedule, lastRotatedMilliseconds: epochMilliseconds(out["LastRotatedDate"]),
            nextRotationMilliseconds: epochMilliseconds(out["NextRotationDate"]), tags: tags,
            kmsKeyId: out["KmsKeyId"]?.stringValue)
    }
}

/// `RotationRules`: a schedule expression, or the older "every N days", and the window's length.
public struct RotationSchedule: Sendable, Equatable {
    public let scheduleExpression: String?
    public let automaticallyAfterDays: Int?
    /// e.g. `3h`: how long the rotation window stays open.
    public let duration: String?

    public init(scheduleExpression: String?, automaticallyAfterDays: Int?, duration: String?) {
        self.scheduleExpression = scheduleExpression
        self.automaticallyAfterDays = automaticallyAfterDays
        self.duration = duration
    }

    /// `rate(30 days)`, `cron(...)`: one text whichever form was used.
    public var summary: String? {
        scheduleExpression ?? automaticallyAfterDays.map { "rate(\($0) days)" }
    }
}

/// One entry of `ListSecretVersionIds`.
public struct SecretVersionEntry: Sendable, Equatable {
    public let versionId: String
    public let stages: [String]
    public let createdMilliseconds: Int64?

    public init(versionId: String, stages: [String], createdMilliseconds: Int64?) {
        self.versionId = versionId
        self.stages = stages
        self.createdMilliseconds = createdMilliseconds
    }
}

public struct SecretValue: Sendable {
    public let arn: String
    public let versionId: String
    public let secretString: String?

    public init(arn: String, versionId: String, secretString: String?) {
        self.arn = arn
        self.versionId = versionId
        self.secretString = secretString
    }
}

/// Which version to read: one of the two, as Secrets Manager accepts.
public enum SecretVersionSelector: Sendable {
    case stage(String)
    case versionId(String, stage: String?)
}

public struct PasswordRequest: Sendable {
    public var length: Int
    public var excludeCharacters: String
    /// At least one lower-case letter, upper-case letter, digit and punctuation character.
    public var requireEachIncludedType: Bool

    public init(length: Int, excludeCharacters: String, requireEachIncludedType: Bool) {
        self.length = length
        self.excludeCharacters = excludeCharacters
        self.requireEachIncludedType = requireEachIncludedType
    }
}

/// The Secrets Manager operations the rotation steps call.
public protocol SecretsManagerAPI: AnyObject {
    func describeSecret(_ secretId: String) throws(AWSError) -> SecretDescription
    func getSecretValue(_ secretId: String, _ selector: SecretVersionSelector) throws(AWSError) -> SecretValue
    func putSecretValue(_ secretId: String, clientRequestToken: String, secretString: String, stages: [String],
                        rotationToken: String?) throws(AWSError)
    func updateSecretVersionStage(_ secretId: String, stage: String, moveTo: String?, removeFrom: String?) throws(AWSError)
    func getRandomPassword(_ request: PasswordRequest) throws(AWSError) -> String
}

/// What the operator commands read besides the steps' calls.
public protocol SecretVersionsAPI: AnyObject {
    /// Every version still labelled, with its creation date (all pages).
    func listSecretVersionIds(_ secretId: String) throws(AWSError) -> [SecretVersionEntry]
    /// Every secret (all pages, none scheduled for deletion) that ListSecrets' tag filters match for
    /// the tag `key` and the value `value`. The filters match prefixes, and each on any tag, so this
    /// may return secrets whose `key` tag holds another value or none: the caller checks the tags.
    func listSecrets(taggedWith key: String, value: String) throws(AWSError) -> [SecretDescription]
}

public final class SecretsManagerClient: SecretsManagerAPI, SecretVersionsAPI {
    private let json: JSONProtocolClient

    /// ListSecrets' largest page: 1,000 secrets take 10 calls (its quota is 100 a second).
    static let listPageSize = 100

    public init(_ client: AWSServiceClient) {
        json = JSONProtocolClient(client: client, targetPrefix: "secretsmanager")
    }

    public func describeSecret(_ secretId: String) throws(AWSError) -> SecretDescription {
        try SecretDescription(parsing: json.call("DescribeSecret", .object([("SecretId", .string(secretId))])),
                              operation: "DescribeSecret", stagesMember: "VersionIdsToStages")
    }

    public func listSecrets(taggedWith key: String, value: String) throws(AWSError) -> [SecretDescription] {
        // ListSecrets matches a filter's value as a prefix of a key or value of *any* tag, each filter
        // on its own: the caller keeps only the secrets whose `key` tag holds exactly `value`.
        let filters: JSON = .array([
            .object([("Key", .string("tag-key")), ("Values", .array([.string(key)]))]),
            .object([("Key", .string("tag-value")), ("Values", .array([.string(value)]))]),
        ])
        var secrets: [SecretDescription] = []
        let input: [(String, JSON)] = [("Filters", filters), ("MaxResults", .integer(SecretsManagerClient.listPageSize))]
        try json.callEveryPage("ListSecrets", input) { out throws(AWSError) in
            for entry in out["SecretList"]?.arrayValue ?? [] {
                // A SecretListEntry names the version stages SecretVersionsToStages.
                secrets.append(try SecretDescription(parsing: entry, operation: "ListSecrets", stagesMember: "SecretVersionsToStages"))
            }
        }
        return secrets
    }

    public func listSecretVersionIds(_ secretId: String) throws(AWSError) -> [SecretVersionEntry] {
        var entries: [SecretVersionEntry] = []
        try json.callEveryPage("ListSecretVersionIds", [("SecretId", .string(secretId)), ("IncludeDeprecated", .bool(false))]) { out throws(AWSError) in
            for item in out["Versions"]?.arrayValue ?? [] {
                guard let id = item["VersionId"]?.stringValue else {
                    throw .malformedResponse(operation: "ListSecretVersionIds", reason: "a version without VersionId")
                }
                entries.append(SecretVersionEntry(versionId: id, stages: item["VersionStages"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                  createdMilliseconds: epochMilliseconds(item["CreatedDate"])))
            }
        }
        return entries
    }

    public func getSecretValue(_ secretId: String, _ selector: SecretVersionSelector) throws(AWSError) -> SecretValue {
        var input: [(String, JSON)] = [("SecretId", .string(secretId))]
        switch selector {
        case .stage(let stage):
            input.append(("VersionStage", .string(stage)))
        case let .versionId(id, stage):
            input.append(("VersionId", .string(id)))
            if let stage { input.append(("VersionStage", .string(stage))) }
        }
        let out = try json.call("GetSecretValue", .object(input))
        guard let arn = out["ARN"]?.stringValue, let versionId = out["VersionId"]?.stringValue else {
            throw .malformedResponse(operation: "GetSecretValue", reason: "no ARN or VersionId")
        }
        return SecretValue(arn: arn, versionId: versionId, secretString: out["SecretString"]?.stringValue)
    }

    public func putSecretValue(_ secretId: String, clientRequestToken: String, secretString: String, stages: [String],
                               rotationToken: String?) throws(AWSError) {
        var input: [(String, JSON)] = [
            ("SecretId", .string(secretId)),
            ("ClientRequestToken", .string(clientRequestToken)),
            ("SecretString", .string(secretString)),
            ("VersionStages", .array(stages.map(JSON.string))),
        ]
        if let rotationToken { input.append(("RotationToken", .string(rotationToken))) }
        _ = try json.call("PutSecretValue", .object(input))
    }

    public func updateSecretVersionStage(_ secretId: String, stage: String, moveTo: String?, removeFrom: String?) throws(AWSError) {
        var input: [(String, JSON)] = [("SecretId", .string(secretId)), ("VersionStage", .string(stage))]
        if let moveTo { input.append(("MoveToVersionId", .string(moveTo))) }
        if let removeFrom { input.append(("RemoveFromVersionId", .string(removeFrom))) }
        _ = try json.call("UpdateSecretVersionStage", .object(input))
    }

    public func getRandomPassword(_ request: PasswordRequest) throws(AWSError) -> String {
        var input: [(String, JSON)] = [("PasswordLength", .integer(request.length)), ("RequireEachIncludedType", .bool(request.requireEachIncludedType))]
        if !request.excludeCharacters.isEmpty { input.append(("ExcludeCharacters", .string(request.excludeCharacters))) }
        let out = try json.call("GetRandomPassword", .object(input))
        guard let password = out["RandomPassword"]?.stringValue else {
            throw .malformedResponse(operation: "GetRandomPassword", reason: "no RandomPassword")
        }
        return password
    }
}
