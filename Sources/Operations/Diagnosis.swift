import Rotation

/// What state a secret's rotation is in, in plain language, with what to do about it.
public struct Diagnosis: Equatable, Sendable {
    public enum Verdict: String, CaseIterable, Sendable {
        /// No rotation pending.
        case healthy
        /// Rotation is not enabled or names no function.
        case notConfigured = "not-configured"
        /// The pending version's latest activity (its creation, or its last step, which succeeded)
        /// is recent: the rotation may still be running.
        case inProgress = "in-progress"
        /// AWSPENDING sits on a version that is not AWSCURRENT and the rotation is not running.
        case stuck
        /// No version holds AWSCURRENT.
        case broken

        /// How the lines of `status` name it.
        public var label: String {
            switch self {
            case .healthy: return "OK"
            case .notConfigured: return "NOT CONFIGURED"
            case .inProgress: return "IN PROGRESS"
            case .stuck: return "STUCK"
            case .broken: return "BROKEN"
            }
        }
    }

    public let verdict: Verdict
    public let summary: String
    /// The last failed step and why, when the function's log says.
    public let cause: String?
    public let advice: [String]

    /// The longest a healthy rotation takes: four steps of at most the function's timeout (300 s),
    /// with Secrets Manager's retries in between.
    public static let rotationBoundMilliseconds: Int64 = 20 * 60 * 1000

    public var needsAttention: Bool { verdict != .healthy }

    public static func of(_ state: SecretState, secretId: String) -> Diagnosis {
        guard let current = state.currentVersion else {
            return Diagnosis(verdict: .broken, summary: "no version holds AWSCURRENT: applications reading the secret get an error", cause: nil, advice: [
                "Move AWSCURRENT back to the version whose password the hosts accept (aws secretsmanager "
                    + "update-secret-version-stage --secret-id \(secretId) --version-stage AWSCURRENT --move-to-version-id <id>), "
                    + "then prove it with `rotator doctor --secret-id \(secretId)`.",
            ])
        }
        if let pending = state.pendingVersion {
            return pendingDiagnosis(state, pending: pending, current: current, secretId: secretId)
        }
        guard state.rotationConfigured else {
            let why = state.description.rotationEnabled == true ? "rotation is enabled but names no function" : "rotation is not enabled"
            return Diagnosis(verdict: .notConfigured, summary: why, cause: nil, advice: [
                "Deploy the stack (docs/deploying.md) or run `aws secretsmanager rotate-secret --secret-id \(secretId) "
                    + "--rotation-lambda-arn <function ARN> --rotation-rules ScheduleExpression=...`; "
                    + "`rotator doctor --secret-id \(secretId)` checks everything first.",
            ])
        }
        var advice: [String] = []
        if let next = state.description.nextRotationMilliseconds, next < state.nowMilliseconds {
            advice.append("The next rotation was due \(durationText(state.nowMilliseconds - next)) ago and has not started: "
                + "check that the function still exists and that Secrets Manager may invoke it.")
        }
        if state.description.versionIdsToStages[current]?.contains(SecretStage.pending) == true {
            advice.append("AWSPENDING also sits on the current version (an interrupted finishSecret left it): harmless; the next rotation removes it.")
        }
        return Diagnosis(verdict: .healthy, summary: "no rotation pending", cause: nil, advice: advice)
    }

    private static func pendingDiagnosis(_ state: SecretState, pending: String, current: String, secretId: String) -> Diagnosis {
        if let running = mayBeRunning(state, pending: pending) {
            return running
        }
        let failure = state.lastFailure
        let summary = "version \(pending) holds AWSPENDING but not AWSCURRENT: the rotation did not finish, "
            + "and Secrets Manager starts no other until it does"
        var cause: String?
        var advice: [String] = []
        let retry = "`make rotate SECRET_ID=\(secretId)` makes Secrets Manager retry this same version"
        let cancel = "`rotator cancel --secret-id \(secretId)` abandons it, after proving every host accepts AWSCURRENT"
        if let failure {
            cause = "\(failure.step) failed at \(utcText(failure.atMilliseconds)) (\(failure.reason ?? "unknown reason")): "
                + (failure.message ?? "no message")
            advice.append(reasonAdvice(failure.kind, step: failure.step, secretId: secretId))
            if let problem = state.logProblem {
                advice.append("A later failure may be missing: the function's log could not be read: \(problem).")
            }
        } else if state.pendingHasValue == false {
            advice.append("The pending version has no value: createSecret did not finish.")
        } else {
            let why = state.logProblem.map { "the function's log could not be read: \($0)" }
                ?? "no failure of this version is in the function's log (it may have expired)"
            advice.append("The last failure is unknown: \(why). Read the SNS alert of this rotation.")
        }
        switch failure.flatMap({ RotationStep(rawValue: $0.step) }) {
        case .finishSecret:
            advice.append("Every host already took the new password; only the labels did not move: \(retry).")
        case .createSecret:
            advice.append("No host was touched yet. Fix the cause, then \(retry), or \(cancel).")
        default:
            advice.append("Then \(retry), or \(cancel).")
        }
        advice.append("Never remove AWSPENDING by hand: a host may accept only the pending password.")
        return Diagnosis(verdict: .stuck, summary: summary, cause: cause, advice: advice)
    }

    /// The in-progress diagnosis when the rotation may still be running, nil when it has stopped.
    /// What counts is the version's latest activity: its last step record, or its creation when it
    /// has none. A step that ended in failure stopped the rotation (its rollback ran; a retry shows
    /// as a new record, and cancel's settle undoes a retry that lands while it runs). A step that
    /// succeeded within the bound is followed by the next step, even when an earlier attempt of the
    /// same version failed (Secrets Manager's retry, `make rotate`) or the version is old.
    private static func mayBeRunning(_ state: SecretState, pending: String) -> Diagnosis? {
        let latest = state.pendingSteps.last
        if latest?.succeeded == false { return nil }
        guard let since = latest?.atMilliseconds ?? state.pendingCreatedMilliseconds else { return nil }
        let age = state.nowMilliseconds - since
        guard age < rotationBoundMilliseconds else { return nil }
        let what = latest.map { "its \($0.step) succeeded \(durationText(age)) ago" + (state.lastFailure == nil ? "" : " after an earlier failure") }
            ?? "a rotation began \(durationText(age)) ago"
        return Diagnosis(
            verdict: .inProgress,
            summary: "version \(pending) holds AWSPENDING: \(what) and no step has failed since",
            cause: nil,
            advice: ["It may still be running: check again in \(durationText(rotationBoundMilliseconds - age)). "
                + "Do not cancel a running rotation."]
                + (state.logProblem.map { ["(The function's log could not be read: \($0).)"] } ?? []))
    }

    /// What to do about each kind of failure; `nil` when the record names none this build knows.
    static func reasonAdvice(_ kind: RotationError.Kind?, step: String, secretId: String) -> String {
        switch kind {
        case .hostCommandFailed:
            return "A host could not \(step == RotationStep.testSecret.rawValue ? "log in with" : "take") the new password: fix the host named above "
                + "(SSM Run Command's history has the script's output; `rotator doctor --secret-id \(secretId)` checks each host)."
        case .invalidSecret:
            return "The secret's JSON is incomplete or invalid: correct the field named above in the AWSCURRENT value "
                + "(`rotator doctor --secret-id \(secretId)` checks it)."
        case .configuration:
            return "The function's configuration is wrong (SSM document or password settings): correct the stack's parameters and redeploy."
        case .documentRefused:
            return "The SSM document's default version is not the one this rotator ships, so nothing was sent to any host: someone "
                + "published another version, or the stack and the function come from different commits. Find out who changed the "
                + "document (CloudTrail: UpdateDocument, UpdateDocumentDefaultVersion), then set the shipped version back as the default "
                + "or redeploy the stack."
        case .rotationNotEnabled:
            return "Rotation was disabled while this version was pending: enable it again."
        case .versionNotPending:
            return "The version's labels changed under the rotation (someone moved AWSPENDING or AWSCURRENT by hand)."
        case .aws:
            return "An AWS call failed (permissions, throttling or the network): the message names the call."
        case .invalidEvent, nil:
            return "See the message above and the function's log."
        }
    }
}
