import AWS
import RotatorJSON
import Testing
@testable import Rotation

/// A secret as the stack creates it: a random password no host has, marked `"passwordPlaceholder":true`
/// (template.yaml, DatabaseSecret). Adopting a login that applications use with their own password:
/// a failed first rotation must not put the placeholder on the hosts.
@Suite struct PlaceholderPasswordTests {
    /// AWSCURRENT as the stack creates it, for the tests of its parsing.
    static let deployed = World.current(placeholder: true)

    @Test func aFailedSetRestoresNothingAndKeepsPending() throws {
        let w = World(placeholder: true)
        try w.createPendingVersion()
        w.ssm.hosts[instanceB]?.fault = .loginMissing
        #expect(throws: RotationError.self) { try w.run(.setSecret) }

        // A took the pending password and keeps it (AWSPENDING names it); B kept the applications'
        // own. Neither was given the placeholder, which no application has.
        #expect(w.ssm.hosts[instanceA]?.password == w.pendingPassword())
        #expect(w.ssm.hosts[instanceB]?.password == oldPassword)
        let versionsSent = w.ssm.sent.flatMap { $0.input.parameters.filter { $0.0 == "VersionId" }.flatMap(\.1) }
        #expect(versionsSent == [token])
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        let alert = try #require(w.sns.published.first)
        #expect(w.sns.published.count == 1)
        #expect(alert.message.contains("Nothing was restored: AWSCURRENT holds the deployment's placeholder password"))
        #expect(!alert.message.contains(placeholderPassword) && !alert.message.contains(w.pendingPassword()!))
    }

    @Test func aFailedTestRestoresNothingAndKeepsPending() throws {
        let w = World(placeholder: true)
        try w.createPendingVersion()
        try w.run(.setSecret)
        w.ssm.hosts[instanceA]?.password = "changed-behind-our-back"
        #expect(throws: RotationError.self) { try w.run(.testSecret) }
        #expect(w.ssm.hosts[instanceB]?.password == w.pendingPassword())
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
    }

    @Test func theNextVersionIsARealPasswordAndTheRotationFinishes() throws {
        let w = World(placeholder: true)
        w.secrets.startRotation(token: token)
        for step in [RotationStep.createSecret, .setSecret, .testSecret, .finishSecret] { try w.run(step) }
        let next = try #require(w.secrets.versions[token]?.secretString.flatMap { try? JSON.parse($0) })
        #expect(next["passwordPlaceholder"] == nil)
        #expect(next["username"]?.stringValue == "app")
        #expect(try DatabaseSecret.parse(w.secrets.versions[token]?.secretString).passwordIsPlaceholder == false)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
    }

    @Test func withoutTheMarkARealPasswordIsRestoredAsBefore() throws {
        let w = World()
        try w.createPendingVersion()
        w.ssm.hosts[instanceB]?.fault = .loginMissing
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
    }

    @Test(arguments: [#""passwordPlaceholder":"true""#, #""passwordPlaceholder":1"#, #""passwordPlaceholder":null"#])
    func theMarkIsTrueOrFalseOnly(field: String) {
        let text = PlaceholderPasswordTests.deployed.replacing(#""passwordPlaceholder":true"#, with: field)
        #expect(throws: RotationError.self) { try DatabaseSecret.parse(text) }
    }

    @Test func falseIsARealPassword() throws {
        let text = PlaceholderPasswordTests.deployed.replacing(#""passwordPlaceholder":true"#, with: #""passwordPlaceholder":false"#)
        #expect(try DatabaseSecret.parse(text).passwordIsPlaceholder == false)
    }
}
