import AWS
import Rotation

/// Everything `status` reports about a secret, read once; the diagnosis is drawn from it.
public struct SecretState: Sendable {
    public struct Version: Equatable, Sendable {
        public let versionId: String
        public let stages: [String]
        public let createdMilliseconds: Int64?
    }

    public let description: SecretDescription
    public let versions: [Version]
    /// Why creation dates are missing (ListSecretVersionIds failed), if they are.
    public let versionsProblem: String?
    /// The version holding AWSPENDING without AWSCURRENT: an unfinished rotation.
    public let pendingVersion: String?
    /// Whether the pending version holds a value (createSecret ran); nil when unknown.
    public let pendingHasValue: Bool?
    /// The function's step records for the pending version, oldest first.
    public let pendingSteps: [StepRecord]
    /// Why the function's log could not be read, or not in full (a record may then be missing).
    public let logProblem: String?
    public let nowMilliseconds: Int64

    public init(description: SecretDescription, versions: [Version], versionsProblem: String?, pendingHasValue: Bool?,
                pendingSteps: [StepRecord], logProblem: String?, nowMilliseconds: Int64) {
        self.description = description
        let order = [SecretStage.current: 0, SecretStage.pending: 1, SecretStage.previous: 2]
        self.versions = versions.sorted {
            let a = $0.stages.map { order[$0] ?? 3 }.min() ?? 4, b = $1.stages.map { order[$0] ?? 3 }.min() ?? 4
            return a != b ? a < b : $0.versionId < $1.versionId
        }
        self.versionsProblem = versionsProblem
        pendingVersion = description.unfinishedRotationVersion
        self.pendingHasValue = pendingHasValue
        self.pendingSteps = pendingSteps
        self.logProblem = logProblem
        self.nowMilliseconds = nowMilliseconds
    }

    public var currentVersion: String? { description.version(holding: SecretStage.current) }

    public var pendingCreatedMilliseconds: Int64? {
        versions.first { $0.versionId == pendingVersion }?.createdMilliseconds
    }

    public var lastFailure: StepRecord? { pendingSteps.last { !$0.succeeded } }

    public var rotationConfigured: Bool { description.rotationEnabled == true && description.rotationLambdaArn != nil }

    /// Reads the secret's description, versions, whether the pending version has a value (never the
    /// value itself leaves this function) and the function's records of the pending version.
    static func read(_ secretId: String, services: OperatorServices) throws(AWSError) -> SecretState {
        try read(described: services.secrets.describeSecret(secretId), services: services,
                 rotationFunction: services.rotationFunction)
    }

    /// The same from a description already read (status over a fleet lists them). With
    /// `alwaysReadDates` false the versions' creation dates are read only when a rotation is
    /// pending, the one diagnosis that needs them: a fleet's healthy secrets then cost no call each.
    /// `rotationFunction` reads a function's configuration (a fleet's secrets share one: read it once).
    static func read(described description: SecretDescription, services: OperatorServices,
                     rotationFunction: (String) throws(AWSError) -> FunctionSettings,
                     alwaysReadDates: Bool = true) throws(AWSError) -> SecretState {
        var versions = description.versionIdsToStages.map { Version(versionId: $0.key, stages: $0.value.sorted(), createdMilliseconds: nil) }
        var versionsProblem: String?
        if alwaysReadDates || description.unfinishedRotationVersion != nil {
            do {
                let listed = try services.secrets.listSecretVersionIds(description.arn)
                versions = versions.map { version in
                    Version(versionId: version.versionId, stages: version.stages,
                            createdMilliseconds: listed.first { $0.versionId == version.versionId }?.createdMilliseconds)
                }
            } catch {
                versionsProblem = error.description
            }
        }
        let partial = SecretState(description: description, versions: versions, versionsProblem: versionsProblem,
                                  pendingHasValue: nil, pendingSteps: [], logProblem: nil, nowMilliseconds: services.clock.nowMilliseconds)
        guard let pending = partial.pendingVersion else { return partial }

        var pendingHasValue: Bool?
        do {
            _ = try services.secrets.getSecretValue(description.arn, .versionId(pending, stage: SecretStage.pending))
            pendingHasValue = true
        } catch where error.isServiceError("ResourceNotFoundException") {
            pendingHasValue = false
        } catch {
            pendingHasValue = nil
        }

        var steps: [StepRecord] = []
        var logProblem: String?
        if let functionArn = description.rotationLambdaArn {
            do {
                let function = try rotationFunction(functionArn)
                let since = (partial.pendingCreatedMilliseconds.map { $0 - StepLog.marginMilliseconds })
                    ?? partial.nowMilliseconds - StepLog.defaultLookbackMilliseconds
                let found = try StepLog(logs: services.logs).records(logGroup: function.logGroup, secretArn: description.arn, since: since)
                steps = found.records.filter { $0.versionId == pending }
                logProblem = found.incompleteBecause.map { "the search was incomplete (\($0))" }
            } catch {
                logProblem = error.description
            }
        } else {
            logProblem = "no rotation function is configured, so there is no log to read"
        }
        return SecretState(description: description, versions: versions, versionsProblem: versionsProblem,
                           pendingHasValue: pendingHasValue, pendingSteps: steps, logProblem: logProblem,
                           nowMilliseconds: partial.nowMilliseconds)
    }
}

extension SecretDescription {
    /// The version holding AWSPENDING without AWSCURRENT: a rotation that did not finish.
    var unfinishedRotationVersion: String? {
        versionIdsToStages.first { $0.value.contains(SecretStage.pending) && !$0.value.contains(SecretStage.current) }?.key
    }
}
