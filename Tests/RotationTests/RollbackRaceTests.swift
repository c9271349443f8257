import RotatorTestSupport
import Testing
@testable import Rotation

/// The rollback race (docs/THREAT-MODEL.md): a `set` of the pending version that lands on a host
/// after the rollback restored it. The rollback removes AWSPENDING, then restores once more.
@Suite struct RollbackRaceTests {
    @Test func aLateSetBeforeThePendingLabelIsRemovedIsUndone() throws {
        let w = World()
        try w.createPendingVersion()
        let pendingPassword = try #require(w.pendingPassword())
        w.ssm.hosts[instanceB]?.fault = .loginMissing
        // After this copy restored every host, another copy's set of the pending version lands on A,
        // just before AWSPENDING is removed.
        w.secrets.meanwhile = (before: "UpdateSecretVersionStage", run: {
            w.ssm.hosts[instanceA]?.password = pendingPassword
        })
        w.ssm.hosts[instanceB]?.fault = nil
        w.ssm.whileSending = { input in
            // The first command (this copy's set) fails on A, so the rollback runs.
            if input.parameters.first(where: { $0.0 == "VersionId" })?.1 == [token] { w.ssm.hosts[instanceA]?.fault = .loginMissing }
            else { w.ssm.hosts[instanceA]?.fault = nil }
        }
        #expect(throws: RotationError.self) { try w.run(.setSecret) }

        #expect(w.secrets.stages(of: token) == [], "the pending version is abandoned")
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword, "a host holds a password no label holds")
        #expect(w.ssm.hosts[instanceB]?.password == oldPassword)
        let versions = w.ssm.sent.compactMap { $0.input.parameters.first(where: { $0.0 == "VersionId" })?.1.first }
        #expect(versions == [token, currentVersion, currentVersion], "set, restore, settle")
        #expect(w.sns.published.count == 1)
    }

    @Test func aSettleThatCannotBeProvenPutsThePendingLabelBack() throws {
        let w = World()
        try w.createPendingVersion()
        var restores = 0
        w.ssm.whileSending = { input in
            let version = input.parameters.first(where: { $0.0 == "VersionId" })?.1.first
            if version == token { w.ssm.hosts[instanceA]?.fault = .loginMissing; return }
            restores += 1
            // The restore succeeds everywhere; the settle finds host A silent.
            w.ssm.hosts[instanceA]?.fault = restores == 2 ? .neverAnswers : nil
        }
        #expect(throws: RotationError.self) { try w.run(.setSecret) }

        #expect(restores == 2)
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"], "the label goes back: host A may hold the pending password")
        let alert = try #require(w.sns.published.first)
        #expect(alert.message.contains("AWSPENDING is back on version \(token)"))
    }

    /// testSecret proved the new password, then a late copy of setSecret failed and restored
    /// AWSCURRENT's old password on both hosts (pytests/e2e/test_interleavings.py found it);
    /// `meanwhile` is what else happened before finishSecret runs. finishSecret, whose labels do not
    /// show the restore, must leave every host on the version it makes current whatever it answers:
    /// a host holding a password only AWSPREVIOUS holds is a lost login. Returns the world and the
    /// error finishSecret threw, if it did.
    private func finishSecretAfterALateRestore(meanwhile: (World) throws -> Void = { _ in }) throws -> (World, RotationError?) {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        let newPassword = try #require(w.pendingPassword())
        w.ssm.hosts[instanceA]?.password = oldPassword
        w.ssm.hosts[instanceB]?.password = oldPassword
        try meanwhile(w)

        let error = caught { () throws(RotationError) in try w.run(.finishSecret) }

        #expect(w.ssm.hosts[instanceA]?.password == newPassword, "a host holds a password only AWSPREVIOUS holds")
        #expect(w.ssm.hosts[instanceB]?.password == newPassword)
        return (w, error)
    }

    /// finishSecret's first command sets the token's password everywhere (the settle).
    @Test func finishSecretSetsTheNewCurrentOnEveryHostAfterALateRestore() throws {
        var sentBefore = 0
        let (w, error) = try finishSecretAfterALateRestore(meanwhile: { sentBefore = $0.ssm.sent.count })
        #expect(error == nil)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        let settle = try #require(w.ssm.sent.dropFirst(sentBefore).first)
        #expect(settle.input.parameters.first(where: { $0.0 == "Action" })?.1 == ["set"])
        #expect(settle.input.parameters.first(where: { $0.0 == "VersionId" })?.1 == [token])
        #expect(w.sns.published.isEmpty)
    }

    /// finishSecret stopped right after moving AWSCURRENT (its settle never ran): the retry, finding
    /// the token AWSCURRENT and AWSPENDING, settles the hosts on it before it removes AWSPENDING,
    /// instead of only removing the label.
    @Test func theRetryOfAFinishInterruptedAfterItsMoveSettlesTheHosts() throws {
        let (w, error) = try finishSecretAfterALateRestore(meanwhile: { w in
            try w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: token, removeFrom: currentVersion)
        })
        #expect(error == nil)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.sns.published.isEmpty)
    }

    /// The late copy's relabel makes finishSecret's removal of AWSPENDING fail: the settle came
    /// first, so the hosts hold the new AWSCURRENT all the same.
    @Test func finishSecretSettlesBeforeRemovingPending() throws {
        let (_, error) = try finishSecretAfterALateRestore(meanwhile: { w in
            // While this step's settle runs, AWSPENDING is put back, and then the removal fails
            // (unapplied), its re-read finding AWSPENDING still there.
            w.ssm.whileSending = { _ in
                w.secrets.stageMoveFailures = [(false, serviceError("InvalidParameterException"))]
            }
        })
        #expect(error != nil)
    }

    @Test func finishSecretFailsAndAlertsWhenTheSettleIsNotProven() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        w.ssm.hosts[instanceB]?.fault = .loginMissing

        #expect(throws: RotationError.self) { try w.run(.finishSecret) }

        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"], "the labels already moved; nothing is rolled back")
        let alert = try #require(w.sns.published.first)
        #expect(alert.message.contains(instanceB))
    }
}
