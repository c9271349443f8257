import AWS
import RotatorLogging

/// The four rotation steps for a database login on EC2 hosts, on every host named by the secret.
/// Two strategies, chosen by the secret: single user (the login's own password changes), or, when
/// the secret has `masterarn`, alternating users (each version names the login that is not current,
/// `name` <-> `name_clone`; the host script, as the administrator of the master secret, creates it
/// if missing with the current login's grants, so the login applications hold keeps working). The
/// steps are the same for both: the host script reads the strategy from the version it must hold.
///
/// Every step is idempotent, because Secrets Manager retries a failed rotation with the same token.
/// Whatever fails, `AWSPENDING` is only dropped once every host is proven to accept `AWSCURRENT`.
public final class Rotator {
    /// Kept back from the invocation deadline to report the outcome, alert and update stages: the
    /// step's own AWS calls (Secrets Manager, SSM) must stop this much before it.
    public static let reserveMilliseconds: Int64 = 3_000

    private let secrets: SecretsManagerAPI
    private let hosts: HostRunner
    private let alerts: AlertPublisher
    private let passwordPolicy: PasswordPolicy
    private let clock: MillisecondClock
    /// The end of the invocation this rotator serves (epoch milliseconds). A rotator is made per
    /// invocation, from the same value as the deadline its AWS clients stop at.
    private let deadlineMilliseconds: Int64
    /// The tag whose value is the only login (and its `_clone`) a version of the secret may name,
    /// when one function serves many secrets (the shared layout, docs/deploying.md "Deploying a
    /// fleet"): there the documents cannot pin a login, and the secret's resource policy lets only
    /// its administrators change its tags. nil: the stack's documents pin it (the single stack).
    private let loginTag: String?
    /// The ARN of the one KMS key every secret of the shared layout is encrypted with (its unit names
    /// it). A secret on any other key, the account's aws/secretsmanager above all, which every
    /// principal of the account may use, is one nobody enrolled through a unit: refused before
    /// anything is read or sent. nil: the single stack, whose secret the stack itself created.
    private let secretKeyArn: String?

    public init(secrets: SecretsManagerAPI, hosts: HostRunner, alerts: AlertPublisher, passwordPolicy: PasswordPolicy, clock: MillisecondClock,
                deadlineMilliseconds: Int64, loginTag: String? = nil, secretKeyArn: String? = nil) {
        self.secrets = secrets
        self.hosts = hosts
        self.alerts = alerts
        self.passwordPolicy = passwordPolicy
        self.clock = clock
        self.deadlineMilliseconds = deadlineMilliseconds
        self.loginTag = loginTag
        self.secretKeyArn = secretKeyArn
    }

    /// Runs one step. Returns normally when the step's work is done (or was already done). Every
    /// failure is alerted: a host's with its details where it happens, any other here.
    public func rotate(_ event: RotationEvent, logger: Logger) throws(RotationError) {
        do {
            try runStep(event, logger: logger)
        } catch {
            if case .hostCommandFailed = error { throw error }
            alerts.rotationFailed(secretArn: event.secretId, step: event.step, reason: "\(error.errorType): \(error.description)",
                                  details: [], logger: logger)
            throw error
        }
    }

    private func runStep(_ event: RotationEvent, logger: Logger) throws(RotationError) {
        let description = try aws { () throws(AWSError) in try secrets.describeSecret(event.secretId) }
        let log = logger.with(("step", event.step.rawValue), ("secretArn", description.arn))
        try requireFleetKey(description)
        let work = try checkGuard(event, description, log)
        if work == .none { return }
        let context = StepContext(event: event, arn: description.arn, description: description, logger: log)
        if work == .completeFinish {
            try settleAndDropPending(context)
            log.info("completed a finishSecret interrupted between its stage moves", ("versionId", event.token))
            return
        }
        switch event.step {
        case .createSecret: try createSecret(context)
        case .setSecret: try setSecret(context)
        case .testSecret: try testSecret(context)
        case .finishSecret: try finishSecret(context)
        }
    }

    struct StepContext {
        let event: RotationEvent
        let arn: String
        let description: SecretDescription
        let logger: Logger
        var token: String { event.token }
    }

    /// What a step has to do once the guard let it through.
    enum GuardedWork: Equatable {
        /// The step's own work: the token is AWSPENDING and not AWSCURRENT.
        case step
        /// The token is AWSCURRENT alone: the rotation is done.
        case none
        /// The token is AWSCURRENT and still AWSPENDING: a finishSecret stopped between its two
        /// stage moves, so the rest of it (the settle and the removal) is what any step does.
        case completeFinish
    }

    /// As AWS's own templates: rotation enabled (or not stated), the token a version of the secret,
    /// and that version pending. A token already current has nothing left to do but the end of an
    /// interrupted finishSecret.
    private func checkGuard(_ event: RotationEvent, _ description: SecretDescription, _ log: Logger) throws(RotationError) -> GuardedWork {
        if description.rotationEnabled == false {
            throw .rotationNotEnabled("rotation is not enabled for \(description.arn)")
        }
        guard let stages = description.versionIdsToStages[event.token] else {
            throw .versionNotPending("version \(event.token) is not a version of \(description.arn)")
        }
        if stages.contains(SecretStage.current) {
            // Interrupted after moving AWSCURRENT, its settle may not have run: a late restore of
            // the old version could have landed on a host just before, leaving it on a password
            // only AWSPREVIOUS holds. Completing it means settling first, as finishSecret does.
            if stages.contains(SecretStage.pending) { return .completeFinish }
            log.info("version is already AWSCURRENT; nothing to do", ("versionId", event.token))
            return .none
        }
        guard stages.contains(SecretStage.pending) else {
            throw .versionNotPending("version \(event.token) of \(description.arn) is not AWSPENDING")
        }
        return .step
    }

    // MARK: createSecret

    /// Stores a new password as the pending version, copying every other field of the current one
    /// (but the username, with alternating users). Does nothing if the pending version already holds
    /// a value, provided that value is one this step could have written (same login or its alternate,
    /// hosts, engine, host and masterarn as AWSCURRENT); fails with InvalidSecret otherwise.
    private func createSecret(_ c: StepContext) throws(RotationError) {
        let current = try currentSecret(c)
        let existing: SecretValue?
        do {
            existing = try secrets.getSecretValue(c.arn, .versionId(c.token, stage: SecretStage.pending))
        } catch where error.isServiceError("ResourceNotFoundException") {
            // Expected: Secrets Manager created the version without a value.
            existing = nil
        } catch {
            throw RotationError(error)
        }
        if let existing {
            // Kept only if it is a version this step could have written: the hosts act on it next.
            try pendingSecret(existing, current: current.secret, c)
            c.logger.info("pending version already has a value; nothing to do", ("versionId", c.token))
            return
        }
        let username = try current.secret.nextUsername()
        // Alternating users' next login is the current one's pair, which the pin may not name
        // (a pin `app_clone` allows `app_clone_clone`, not `app`): checked before it is written.
        try requirePinnedLogin(username, "AWSPENDING", c)
        let password = try aws { () throws(AWSError) in try secrets.getRandomPassword(passwordPolicy.randomPasswordRequest) }
        guard passwordPolicy.admits(password) else {
            throw .aws(.malformedResponse(operation: "GetRandomPassword", reason: "a password outside the requested length or alphabet"))
        }
        let next = try current.secret.nextVersion(password: password)
        do {
            try secrets.putSecretValue(c.arn, clientRequestToken: c.token, secretString: next,
                                       stages: [SecretStage.pending], rotationToken: c.event.rotationToken)
        } catch where error.isServiceError("ResourceExistsException") {
            // Another copy of this step (Lambda may run two) stored its password first: keep that one,
            // if it is a version this step could have written.
            let existing = try aws { () throws(AWSError) in try secrets.getSecretValue(c.arn, .versionId(c.token, stage: SecretStage.pending)) }
            try pendingSecret(existing, current: current.secret, c)
            c.logger.info("pending version created by another invocation", ("versionId", c.token))
            return
        } catch {
            throw RotationError(error)
        }
        c.logger.info("pending version created", ("versionId", c.token), ("username", username),
                      ("strategy", current.secret.masterArn == nil ? "single-user" : "alternating-users"))
    }

    // MARK: setSecret

    /// Makes every host's login accept the pending password. On failure, rolls the hosts back to the
    /// current password and fails the step.
    private func setSecret(_ c: StepContext) throws(RotationError) {
        try requireEveryHost(.set, c, failure: "setting the pending password failed")
    }

    // MARK: testSecret

    /// Proves that every host accepts the pending password with a fresh login. On failure, rolls the
    /// hosts back to the current password, verifies that, and fails the step.
    private func testSecret(_ c: StepContext) throws(RotationError) {
        try requireEveryHost(.verify, c, failure: "logging in with the pending password failed")
    }

    /// Runs `action` for the pending version on every host of the pending secret; returns only
    /// when every host succeeded.
    private func requireEveryHost(_ action: HostAction, _ c: StepContext, failure: String) throws(RotationError) {
        let current = try currentSecret(c)
        let pending = try pendingSecret(c, current: current.secret)
        let command = try HostCommand(action: action, secretArn: c.arn, versionId: c.token)
        let results = try hosts.run(command, engine: pending.engine, on: pending.instanceIds, step: c.event.step,
                                    untilMilliseconds: firstAttemptEnd(c), logger: c.logger)
        guard results.allSatisfy(\.succeeded) else {
            try failAfterRollback(c, results: results, current: current, instanceIds: pending.instanceIds, reason: failure)
        }
        c.logger.info("every host succeeded", ("action", action.rawValue),
                      ("instances", results.map(\.summary).joined(separator: "; ")))
    }

    // MARK: finishSecret

    /// Moves `AWSCURRENT` to the new version (`AWSPREVIOUS` follows by itself), clears `AWSPENDING`,
    /// then sets the new version on every host once more (the settle).
    ///
    /// The settle is what makes the move safe against a late copy of setSecret (Lambda may deliver
    /// one after testSecret passed): that copy can fail on a host and restore the old AWSCURRENT
    /// everywhere after testSecret proved the new password, and the labels this step read before
    /// the move do not show it (Secrets Manager has no conditional stage move). Once AWSCURRENT is
    /// on the new version, hosts refuse a set of the old one (it is neither AWSCURRENT nor
    /// AWSPENDING, read under their lock), so whatever a late rollback restored before the move is
    /// undone here and nothing can undo it after. Found by pytests/e2e/test_interleavings.py.
    private func finishSecret(_ c: StepContext) throws(RotationError) {
        let previous = c.description.version(holding: SecretStage.current)
        try moveStage(SecretStage.current, arn: c.arn, token: c.token, moveTo: c.token, removeFrom: previous,
                      done: { $0.contains(SecretStage.current) })
        try settleAndDropPending(c)
        c.logger.info("rotation finished", ("versionId", c.token), ("previousVersionId", previous ?? "none"))
    }

    /// The end of finishSecret, once AWSCURRENT is on the token: the hosts settled on it, then
    /// AWSPENDING removed. The settle comes right after the move, before anything else can fail: a
    /// late copy may also put AWSPENDING back (its own settle refused), and then the removal fails.
    private func settleAndDropPending(_ c: StepContext) throws(RotationError) {
        let unsettled = settleOnCurrent(c)
        try moveStage(SecretStage.pending, arn: c.arn, token: c.token, moveTo: nil, removeFrom: c.token,
                      done: { !$0.contains(SecretStage.pending) })
        if let unsettled { throw unsettled }
    }

    /// Sets the version this step made AWSCURRENT on every host it names. Returns the step's error
    /// unless every host proved it (a host's failure alerted here, with each host's answer).
    /// Nothing is rolled back: the labels already name this version, so a host that did not take
    /// it is the one to fix.
    private func settleOnCurrent(_ c: StepContext) -> RotationError? {
        do {
            let value = try aws { () throws(AWSError) in try secrets.getSecretValue(c.arn, .versionId(c.token, stage: SecretStage.current)) }
            let settled: DatabaseSecret
            do {
                settled = try DatabaseSecret.parse(value.secretString, secretArn: c.arn)
            } catch {
                return .invalidSecret("AWSCURRENT: \(error)")
            }
            try requirePinnedLogin(settled.username, "AWSCURRENT", c)
            let command = try HostCommand(action: .set, secretArn: c.arn, versionId: c.token)
            let results = try hosts.run(command, engine: settled.engine, on: settled.instanceIds, step: c.event.step,
                                        untilMilliseconds: deadlineMilliseconds - Rotator.reserveMilliseconds, logger: c.logger)
            let failed = results.filter { !$0.succeeded }
            guard failed.isEmpty else {
                let reason = "AWSCURRENT is on version \(c.token), but setting it once more was not proven on every host"
                c.logger.error(reason, ("instances", failed.map(\.summary).joined(separator: "; ")))
                alerts.rotationFailed(secretArn: c.arn, step: c.event.step, reason: "\(reason): a host may hold another password; fix it.",
                                      details: results.map { "settle on \($0.summary)" }, logger: c.logger)
                return .hostCommandFailed("\(reason): \(failed.map(\.summary).joined(separator: "; "))")
            }
            return nil
        } catch {
            return error
        }
    }

    /// One UpdateSecretVersionStage. When it fails, the version's stages are read again and the
    /// move counts as made if `done` holds for them: an attempt may be applied with its answer lost
    /// (a timeout, a reset), and the client's retry then finds the label already moved and fails; or
    /// another copy of this step (Lambda may run two) moved it first.
    private func moveStage(_ stage: String, arn: String, token: String, moveTo: String?, removeFrom: String?,
                           done: ([String]) -> Bool) throws(RotationError) {
        do {
            try secrets.updateSecretVersionStage(arn, stage: stage, moveTo: moveTo, removeFrom: removeFrom)
        } catch {
            guard let stages = try? secrets.describeSecret(arn).versionIdsToStages[token] ?? [], done(stages) else {
                throw RotationError(error)
            }
        }
    }

    // MARK: Failure

    /// Puts the current password back on every host, then fails the step. `AWSPENDING` is removed
    /// only when every host proved it accepts `AWSCURRENT`; otherwise it stays, so no version that
    /// may hold the only working password loses its label. When `AWSCURRENT` holds a placeholder
    /// password (`DatabaseSecret.passwordIsPlaceholder`), nothing is restored and `AWSPENDING` stays.
    ///
    /// Another `set` of the pending version may still be on its way to a host (a copy of this step
    /// that outlived its invocation, a command SSM delivers late) and land after the restore. Hosts
    /// refuse a `set` for a version that is no longer AWSPENDING or AWSCURRENT, read under their
    /// per-secret lock, so once the label is gone one more restore (the settle) undoes anything that
    /// landed before: after it, every host holds AWSCURRENT's password. If the settle cannot prove
    /// that, AWSPENDING goes back on the version, since some host may hold its password.
    private func failAfterRollback(_ c: StepContext, results: [InstanceResult], current: (versionId: String, secret: DatabaseSecret),
                                   instanceIds: [String], reason: String) throws(RotationError) -> Never {
        let failed = results.filter { !$0.succeeded }
        c.logger.error(reason, ("instances", failed.map(\.summary).joined(separator: "; ")))
        var details = results.map(\.summary)
        // Alerts with what became of the hosts and the labels; the error the step fails with.
        func failure(_ outcome: String) -> RotationError {
            alerts.rotationFailed(secretArn: c.arn, step: c.event.step, reason: "\(reason). \(outcome)", details: details, logger: c.logger)
            return .hostCommandFailed("\(reason): \(failed.map(\.summary).joined(separator: "; ")). \(outcome)")
        }
        if let movedOn = rotationMovedOn(c, from: current.versionId) {
            // Another copy of this step (Lambda may run two) or a later step finished meanwhile:
            // `current` is stale, and restoring it now would undo that rotation on the hosts.
            c.logger.error("step failed; rollback skipped", ("reason", movedOn))
            throw failure("Nothing was rolled back: \(movedOn) while this step ran, so another invocation moved the rotation on.")
        }
        if current.secret.passwordIsPlaceholder {
            // AWSCURRENT holds the password the deployment wrote, which no host ever had: restoring
            // it would lock out the applications still on the login's own password. Hosts that did
            // not take the pending password keep theirs; those that did hold AWSPENDING's, which
            // keeps its label so the retry of this version finishes the job.
            c.logger.error("step failed; nothing to restore", ("reason", "AWSCURRENT holds a placeholder password"))
            throw failure("Nothing was restored: AWSCURRENT holds the deployment's placeholder password, which no host ever had "
                + "(hosts that did not take the pending password keep their own). AWSPENDING stays on version \(c.token): "
                + "fix the cause, then let Secrets Manager retry or rotate again.")
        }
        let restoredEverywhere = restore(c, current: current, on: instanceIds, as: "restore", details: &details)
        var outcome: String
        if restoredEverywhere {
            do {
                try secrets.updateSecretVersionStage(c.arn, stage: SecretStage.pending, moveTo: nil, removeFrom: c.token)
                if restore(c, current: current, on: instanceIds, as: "settle", details: &details) {
                    outcome = "Every host accepts AWSCURRENT again; the pending version was abandoned and the next rotation starts afresh."
                } else {
                    outcome = relabelPending(c)
                }
            } catch {
                outcome = "Every host accepts AWSCURRENT again, but removing AWSPENDING failed (\(error)); it stays until removed by hand."
            }
        } else {
            outcome = "Not every host is proven to accept AWSCURRENT, so AWSPENDING stays on version \(c.token): "
                + "some host may hold the pending password. Fix the host, then let Secrets Manager retry or rotate again."
        }
        c.logger.error("step failed", ("restored", String(restoredEverywhere)))
        throw failure(outcome)
    }

    /// Sets AWSCURRENT's version on every host; true when every host proved it holds it.
    private func restore(_ c: StepContext, current: (versionId: String, secret: DatabaseSecret), on instanceIds: [String],
                         as what: String, details: inout [String]) -> Bool {
        do {
            let restore = try HostCommand(action: .set, secretArn: c.arn, versionId: current.versionId)
            let restored = try hosts.run(restore, engine: current.secret.engine, on: instanceIds, step: c.event.step,
                                         untilMilliseconds: deadlineMilliseconds - Rotator.reserveMilliseconds, logger: c.logger)
            details += restored.map { "\(what) AWSCURRENT on \($0.summary)" }
            return restored.allSatisfy(\.succeeded)
        } catch {
            details.append("\(what) of AWSCURRENT failed: \(error)")
            return false
        }
    }

    /// The settle after removing AWSPENDING failed on some host: the label goes back on the version.
    private func relabelPending(_ c: StepContext) -> String {
        let unproven = "Every host accepted AWSCURRENT, but after AWSPENDING was removed not every host proved it again "
            + "(a late command for the pending version may have landed)"
        do {
            try secrets.updateSecretVersionStage(c.arn, stage: SecretStage.pending, moveTo: c.token, removeFrom: nil)
            return "\(unproven), so AWSPENDING is back on version \(c.token). Fix the host, then let Secrets Manager retry or rotate again."
        } catch {
            return "\(unproven), and putting AWSPENDING back on version \(c.token) failed (\(error)): "
                + "some host may hold that version's password; run `rotator status`."
        }
    }

    // MARK: Helpers

    private func currentSecret(_ c: StepContext) throws(RotationError) -> (versionId: String, secret: DatabaseSecret) {
        let value = try aws { () throws(AWSError) in try secrets.getSecretValue(c.arn, .stage(SecretStage.current)) }
        let current: DatabaseSecret
        do {
            current = try DatabaseSecret.parse(value.secretString, secretArn: c.arn)
        } catch {
            throw .invalidSecret("AWSCURRENT: \(error)")
        }
        try requirePinnedLogin(current.username, "AWSCURRENT", c)
        return (value.versionId, current)
    }

    /// The shared layout's key check (`secretKeyArn`).
    private func requireFleetKey(_ description: SecretDescription) throws(RotationError) {
        guard let secretKeyArn else { return }
        guard Rotator.isEncrypted(description, withFleetKey: secretKeyArn) else {
            throw .invalidSecret("the secret is encrypted with \(description.kmsKeyId.map { Identifiers.quoted($0, limit: 256) } ?? "aws/secretsmanager"), "
                + "not the fleet's key \(secretKeyArn): only a secret enrolled through a unit (template-secret.yaml) is rotated here; "
                + "nothing was sent to the hosts")
        }
    }

    /// The function's environment variable that names the shared layout's key (template-fleet.yaml).
    public static let fleetKeyVariable = "SECRET_KEY_ARN"

    /// Whether the secret is encrypted with `fleetKeyArn`. Secrets Manager names the key as it was
    /// given (key ID or ARN); an alias, which anyone allowed to update the alias could repoint, is not
    /// the key, and no key at all is `aws/secretsmanager`.
    public static func isEncrypted(_ description: SecretDescription, withFleetKey fleetKeyArn: String) -> Bool {
        let keyId = fleetKeyArn.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init)
        guard let used = description.kmsKeyId else { return false }
        return used == fleetKeyArn || used == keyId
    }

    /// The tag that pins a secret's login (the shared layout's units set it). Honoured on every
    /// secret that carries it, whatever the function's configuration says: someone who may change
    /// the configuration (empty `LOGIN_TAG`) but not the secret's tags must not switch the pin off
    /// (threat 38).
    public static let loginPinTag = "RotatorLogin"

    /// A tag of `tags` whose name is `tag`'s in another case (the first in order), which IAM reads as
    /// `tag` itself: a secret carrying one is refused, and `status --fleet` says why.
    public static func tag(differingOnlyInCaseFrom tag: String, in tags: [String: String]) -> String? {
        tags.keys.filter { $0 != tag && $0.lowercased() == tag.lowercased() }.min()
    }

    /// Refuses a version naming any login but the pinning tag's value and its `_clone`, before any
    /// host command: whoever may write the secret (not its tags) must not choose which login a host
    /// administrator changes. Every version a host acts on is checked, AWSPENDING as AWSCURRENT: a
    /// pending version names its current's alternate, which a pin ending in `_clone` does not name.
    /// The pinning tags are `loginPinTag` wherever the secret carries it, and the function's login
    /// tag (the shared layout), which every secret must carry: the function of a fleet rotates only
    /// logins an administrator pinned. The host checks the tag itself (hosts/linux/flow.sh), so
    /// neither relies on the other.
    private func requirePinnedLogin(_ username: String, _ stage: String, _ c: StepContext) throws(RotationError) {
        let pinningTags = Set([Rotator.loginPinTag, loginTag].compactMap { $0 }).sorted()
        // IAM reads a tag's name without its case: the shared role's condition on RotatorLogin admits
        // a secret tagged `rotatorlogin`, which the exact lookups below would take for no pin at all.
        // Such a secret is refused as ambiguous, whatever else it carries.
        for tag in pinningTags {
            if let variant = Rotator.tag(differingOnlyInCaseFrom: tag, in: c.description.tags) {
                throw .invalidSecret("the secret carries a tag \(Identifiers.quoted(variant, limit: 128)), which differs from \(tag) "
                    + "only in case and which IAM reads as the same tag: remove it; nothing was sent to the hosts")
            }
        }
        if let loginTag, (c.description.tags[loginTag] ?? "").isEmpty {
            throw .invalidSecret("the secret carries no \(loginTag) tag naming the login it rotates: "
                + "an administrator pins it when enrolling the secret; nothing was sent to the hosts")
        }
        for tag in pinningTags {
            guard let pinned = c.description.tags[tag] else { continue }
            let allowed = pinned.isEmpty ? [] : [pinned, pinned + DatabaseSecret.cloneSuffix]
            guard allowed.contains(where: { $0.unicodeScalars.elementsEqual(username.unicodeScalars) }) else {
                throw .invalidSecret("\(stage)'s \"username\" (\(Identifiers.quoted(username, limit: 256))) is not the login "
                    + "the secret's \(tag) tag pins (\(Identifiers.quoted(pinned, limit: 256)), or its _clone); nothing was sent to the hosts")
            }
        }
    }

    /// The pending version, valid and acting for the same login, hosts, engine and administrator as
    /// AWSCURRENT (`DatabaseSecret.requireSameTarget`): checked before any host command.
    private func pendingSecret(_ c: StepContext, current: DatabaseSecret) throws(RotationError) -> DatabaseSecret {
        let value: SecretValue
        do {
            value = try secrets.getSecretValue(c.arn, .versionId(c.token, stage: SecretStage.pending))
        } catch where error.isServiceError("ResourceNotFoundException") {
            throw .versionNotPending("version \(c.token) holds no value yet: createSecret has not run")
        } catch {
            throw RotationError(error)
        }
        return try pendingSecret(value, current: current, c)
    }

    @discardableResult
    private func pendingSecret(_ value: SecretValue, current: DatabaseSecret, _ c: StepContext) throws(RotationError) -> DatabaseSecret {
        let pending: DatabaseSecret
        do {
            pending = try DatabaseSecret.parse(value.secretString, secretArn: c.arn)
        } catch {
            throw .invalidSecret("AWSPENDING: \(error)")
        }
        try pending.requireSameTarget(as: current)
        try requirePinnedLogin(pending.username, "AWSPENDING", c)
        return pending
    }

    /// What changed in the secret's stages since the step began, if `AWSCURRENT` is no longer on
    /// `current` or the token no longer `AWSPENDING`; nil when nothing did, or when that cannot be
    /// read (then the rollback goes ahead, as it would have).
    private func rotationMovedOn(_ c: StepContext, from current: String) -> String? {
        guard let now = try? secrets.describeSecret(c.arn) else { return nil }
        if let holder = now.version(holding: SecretStage.current), holder != current {
            return "AWSCURRENT moved from version \(current) to \(holder)"
        }
        if now.versionIdsToStages[c.token]?.contains(SecretStage.pending) != true {
            return "version \(c.token) is no longer AWSPENDING"
        }
        return nil
    }

    /// The first command of a step may use half the time left, so a rollback still fits after it.
    private func firstAttemptEnd(_ c: StepContext) -> Int64 {
        let now = clock.nowMilliseconds
        return now + max(0, deadlineMilliseconds - Rotator.reserveMilliseconds - now) / 2
    }
}
