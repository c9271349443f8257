import AWS
import RotatorJSON
import Rotation

/// `rotator cancel`: abandons a stuck rotation (removes AWSPENDING from its version), but only after
/// every host proved it accepts AWSCURRENT; otherwise it explains and changes nothing. A host that
/// fails the proof may accept only the pending password, and that version must then keep its label.
///
/// Secrets Manager may retry the rotation while cancel runs (a failed rotation is retried), so a
/// `set` of the pending version can land on a host after its proof. Cancel therefore checks that the
/// labels are still those it proved against, removes AWSPENDING, and then sets AWSCURRENT on every
/// host once more (the settle, as the function's rollback does): hosts refuse a set for a version
/// that lost its label, so whatever landed before the removal is undone, and nothing can land after
/// it. When the settle is not proven on every host, AWSPENDING goes back on the version.
struct CancelCommand {
    let services: OperatorServices
    let console: Console

    func run(secretId: String, force: Bool) throws(OperatorError) -> Int32 {
        let state = try OperatorError.wrap { () throws(AWSError) in try SecretState.read(secretId, services: services) }
        let arn = state.description.arn
        var hosts: [InstanceResult] = []
        func finish(_ code: Int32, cancelled: Bool, _ message: [String]) -> Int32 {
            message.forEach(console.line)
            if console.json {
                console.document(.object([
                    ("secretArn", .string(arn)), ("pendingVersion", state.pendingVersion.map(JSON.string) ?? .null),
                    ("cancelled", .bool(cancelled)),
                    ("hosts", .array(hosts.map { .object([("instanceId", .string($0.instanceId)), ("accepted", .bool($0.succeeded)),
                                                          ("detail", .string($0.summary))]) })),
                    ("message", .string(message.joined(separator: " "))),
                ]))
            }
            return code
        }
        guard let pending = state.pendingVersion else {
            return finish(Operator.ExitCode.pass, cancelled: false, ["No rotation is pending on \(arn): nothing to cancel."])
        }
        let diagnosis = Diagnosis.of(state, secretId: secretId)
        if diagnosis.verdict == .inProgress && !force {
            return finish(Operator.ExitCode.attention, cancelled: false, [
                "Nothing changed: \(diagnosis.summary).",
                "It may still be running; cancelling under it could leave a host on a password no label names.",
                "Wait, or run again with --force once you know it is not running.",
            ])
        }
        guard let functionArn = state.description.rotationLambdaArn else {
            return finish(Operator.ExitCode.attention, cancelled: false, [
                "Nothing changed: the secret names no rotation function, so its SSM documents are unknown."])
        }
        let (current, instanceIds) = try hostsToProve(arn: arn, pending: pending)
        let function = try OperatorError.wrap { () throws(AWSError) in try services.rotationFunction(functionArn) }
        let engine = current.secret.engine
        guard let name = services.documents(of: function)[engine] else {
            throw OperatorError(description: "the rotation function has no \(engine.documentVariable); nothing was changed")
        }
        // Run nothing the stack did not ship: the environment may have been pointed at another document.
        let verifier = services.documentVerifier()
        do {
            _ = try verifier.verified(name, engine: engine, ssm: services.ssm)
        } catch where error.isForeign {
            return finish(Operator.ExitCode.attention, cancelled: false, ["Nothing changed: \(error).", "Fix: \(error.fix)."])
        } catch {
            throw OperatorError(description: "\(error) (\(error.fix)); nothing was changed")
        }
        // AWSCURRENT's version on every host: `verify` is the proof, `set` the settle after the removal.
        let onEveryHost = CurrentLoginProof(ssm: services.ssm, documents: [engine: name], verifier: verifier, console: console,
                                            clock: services.clock)
        func runOnEveryHost(_ action: HostAction) throws(RotationError) -> [InstanceResult] {
            try onEveryHost.run(secretArn: arn, currentVersionId: current.versionId, engine: current.secret.engine,
                                instanceIds: instanceIds, purpose: "cancel", action: action)
        }
        do {
            hosts = try runOnEveryHost(.verify)
        } catch {
            throw OperatorError(description: "the proof could not run (\(error)); nothing was changed")
        }
        let refused = hosts.filter { !$0.succeeded }
        guard refused.isEmpty else {
            return finish(Operator.ExitCode.attention, cancelled: false, [
                "Nothing changed: not every host accepts AWSCURRENT, so version \(pending) keeps AWSPENDING."]
                + refused.map { "  \($0.summary)" } + [
                "A host that refuses AWSCURRENT may hold the pending password (setSecret changed it). Fix that host and let "
                    + "the rotation finish (`make rotate SECRET_ID=\(secretId)` retries this same version), or set its password back "
                    + "to AWSCURRENT's and cancel again."])
        }
        let now = try OperatorError.wrap { () throws(AWSError) in try services.secrets.describeSecret(arn) }
        let nowCurrent = now.version(holding: SecretStage.current), nowPending = now.unfinishedRotationVersion
        guard nowPending == pending, nowCurrent == current.versionId else {
            return finish(Operator.ExitCode.attention, cancelled: false, [
                "Nothing changed: the labels moved while the hosts were proved (AWSCURRENT on \(nowCurrent ?? "no version"), "
                    + "AWSPENDING on \(nowPending ?? "no version")): the rotation is running. Run `rotator status` again."])
        }
        try OperatorError.wrap { () throws(AWSError) in
            try services.secrets.updateSecretVersionStage(arn, stage: SecretStage.pending, moveTo: nil, removeFrom: pending)
        }
        let settled: [InstanceResult]
        do {
            settled = try runOnEveryHost(.set)
        } catch {
            settled = []
        }
        hosts = settled.isEmpty ? hosts : settled
        guard !settled.isEmpty, settled.allSatisfy(\.succeeded) else {
            let relabel: String
            do {
                try services.secrets.updateSecretVersionStage(arn, stage: SecretStage.pending, moveTo: pending, removeFrom: nil)
                relabel = "AWSPENDING is back on version \(pending)."
            } catch {
                relabel = "Putting AWSPENDING back on version \(pending) failed (\(error)): a host may hold its password; run `rotator status`."
            }
            return finish(Operator.ExitCode.attention, cancelled: false, [
                "Every host accepted AWSCURRENT, but setting it once more after removing AWSPENDING was not proven on every host "
                    + "(a retry of the rotation may have changed one meanwhile). \(relabel)"]
                + settled.filter { !$0.succeeded }.map { "  \($0.summary)" })
        }
        return finish(Operator.ExitCode.pass, cancelled: true, [
            "Every host accepts AWSCURRENT (\(hosts.map(\.instanceId).joined(separator: ", "))).",
            "Removed AWSPENDING from version \(pending): the rotation is abandoned and the next one starts afresh."])
    }

    /// AWSCURRENT's version and secret, and every instance either version names (a host only the
    /// pending version lists may have taken the pending password too).
    private func hostsToProve(arn: String, pending: String) throws(OperatorError) -> ((versionId: String, secret: DatabaseSecret), [String]) {
        let value = try OperatorError.wrap { () throws(AWSError) in try services.secrets.getSecretValue(arn, .stage(SecretStage.current)) }
        let secret: DatabaseSecret
        do {
            secret = try DatabaseSecret.parse(value.secretString)
        } catch {
            throw OperatorError(description: "AWSCURRENT is not a usable secret (\(error)); nothing was changed")
        }
        var instanceIds = secret.instanceIds
        if let pendingValue = try? services.secrets.getSecretValue(arn, .versionId(pending, stage: SecretStage.pending)),
           let pendingSecret = try? DatabaseSecret.parse(pendingValue.secretString) {
            instanceIds += pendingSecret.instanceIds.filter { !instanceIds.contains($0) }
        }
        return ((value.versionId, secret), instanceIds)
    }
}
