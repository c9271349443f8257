import AWS
import Rotation
import RotatorJSON
import RotatorTestSupport
import Testing
@testable import Operations

/// Secrets as ListSecrets lists them for a fleet's tag, and what each further call cost.
final class FleetWorld: SecretsManagerAPI, SecretVersionsAPI, LogSearchAPI, FunctionConfigurationAPI {
    var listed: [SecretDescription] = []
    var created: [String: Int64] = [:]
    let log = LogGroupFake()
    var listFailure: AWSError?
    /// What GetFunctionConfiguration answers, by function name: the key its environment names (the
    /// shared function's, unless set otherwise; nil: none), or a failure.
    var functionKeys: [String: String?] = [:]
    var functionFailures: [String: AWSError] = [:]
    var calls: [String] = []
    let clock = ManualClock(nowMilliseconds: now)

    static func arnOf(_ name: String) -> String { "arn:aws:secretsmanager:us-east-1:123456789012:secret:\(name)-AbCdEf" }
    static let fleetKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab"
    static let fleetKey = "arn:aws:kms:us-east-1:123456789012:key/\(fleetKeyId)"

    /// A secret of the fleet `fleet` (its unit's two tags) with the given labels.
    func add(_ name: String, login: String? = "app", fleet: String = "fleet", stages: [String: [String]] = [currentId: ["AWSCURRENT"]],
             enabled: Bool = true, lastRotated: Int64? = now - 86_400_000, extraTags: [String: String] = [:],
             key: String? = FleetWorld.fleetKey, rotatedBy: String = function) {
        var tags = extraTags.merging(["RotatorFleet": fleet]) { $1 }
        if let login { tags["RotatorLogin"] = login }
        listed.append(SecretDescription(arn: FleetWorld.arnOf(name), rotationEnabled: enabled, versionIdsToStages: stages, name: name,
                                        rotationLambdaArn: enabled ? rotatedBy : nil,
                                        rotationSchedule: RotationSchedule(scheduleExpression: "rate(30 days)", automaticallyAfterDays: nil, duration: nil),
                                        lastRotatedMilliseconds: lastRotated, nextRotationMilliseconds: now + 29 * 86_400_000, tags: tags,
                                        kmsKeyId: key))
    }

    /// A step of `name`'s pending version that failed at `at`, as the function logs it.
    func failedStep(_ name: String, _ step: RotationStep, _ failure: RotationError, at: Int64) {
        let lines = LogBuffer()
        StepMetrics(clock: ManualClock(nowMilliseconds: at), sink: { lines.append($0) })
            .stepFinished(RotationEvent(step: step, secretId: FleetWorld.arnOf(name), token: pendingId, rotationToken: nil),
                          startedMilliseconds: at - 1_000, failure: failure)
        log.events += lines.lines.map { LogEvent(timestampMilliseconds: at, message: $0) }
    }

    func listSecrets(taggedWith key: String, value: String) throws(AWSError) -> [SecretDescription] {
        calls.append("ListSecrets \(key)=\(value)")
        if let listFailure { throw listFailure }
        return listed
    }
    func listSecretVersionIds(_ secretId: String) throws(AWSError) -> [SecretVersionEntry] {
        calls.append("ListSecretVersionIds \(secretId)")
        let stages = listed.first { $0.arn == secretId }?.versionIdsToStages ?? [:]
        return stages.map { SecretVersionEntry(versionId: $0.key, stages: $0.value, createdMilliseconds: created[secretId] ?? now - 86_400_000) }
    }
    func getSecretValue(_ secretId: String, _ selector: SecretVersionSelector) throws(AWSError) -> SecretValue {
        calls.append("GetSecretValue \(secretId)")
        return SecretValue(arn: secretId, versionId: pendingId, secretString: "{}")
    }
    func describeSecret(_ secretId: String) throws(AWSError) -> SecretDescription {
        Issue.record("ListSecrets describes every secret already")
        throw serviceError("ResourceNotFoundException")
    }
    func putSecretValue(_ secretId: String, clientRequestToken: String, secretString: String, stages: [String], rotationToken: String?) throws(AWSError) {
        Issue.record("status writes nothing")
    }
    func updateSecretVersionStage(_ secretId: String, stage: String, moveTo: String?, removeFrom: String?) throws(AWSError) {
        Issue.record("status writes nothing")
    }
    func getRandomPassword(_ request: PasswordRequest) throws(AWSError) -> String { "" }
    /// The virtual time of each FilterLogEvents call.
    var logSearches: [Int64] = []
    func filterLogEvents(logGroup: String, member: String, equals value: String, startMilliseconds: Int64,
                         limit: Int) throws(AWSError) -> LogSearch {
        calls.append("FilterLogEvents \(value)")
        logSearches.append(clock.nowMilliseconds)
        return log.search(member: member, equals: value, startMilliseconds: startMilliseconds, limit: limit)
    }
    func getFunctionConfiguration(_ functionName: String) throws(AWSError) -> FunctionSettings {
        calls.append("GetFunctionConfiguration \(functionName)")
        if let failure = functionFailures[functionName] { throw failure }
        let key = functionKeys[functionName] ?? FleetWorld.fleetKey
        return FunctionSettings(functionArn: functionName, environment: key.map { ["SECRET_KEY_ARN": $0] } ?? [:],
                                logGroup: "/aws/lambda/rotator")
    }

    var services: OperatorServices {
        OperatorServices(secrets: self, ssm: StuckWorld(), functions: self, logs: self, clock: clock)
    }

    /// `rotator status --fleet fleet [--json]`: exit status, standard output, standard error.
    func status(fleet: String = "fleet", json: Bool = false) -> (Int32, String, String) {
        let captured = Captured()
        let code = Operator.run(OperatorArguments(command: .status, target: .fleet(fleet), json: json, force: false),
                                services: services, console: captured.console(json: json))
        return (code, captured.out, captured.err)
    }
}

func serviceError(_ code: String) -> AWSError {
    .service(operation: "Fake", AWSServiceError(code: code, message: code, httpStatus: 400, requestId: nil))
}

/// The fields of the lines after the header, cut where the header's columns begin.
func columns(_ lines: [String]) -> [[String]] {
    let header = Array(lines[0])
    let starts = ["NAME", "LOGIN", "LAST ROTATED", "NEXT ROTATION", "STATE", "LAST FAILURE"].map { title in
        header.indices.first { header[$0...].starts(with: title) } ?? header.count
    }
    return lines.dropFirst().map { line in
        let characters = Array(line)
        return starts.indices.map { column in
            let from = min(starts[column], characters.count)
            let to = column + 1 < starts.count ? min(starts[column + 1], characters.count) : characters.count
            var field = String(characters[from..<to])
            while field.last == " " { field.removeLast() }
            return field
        }
    }
}

@Suite struct FleetStatusTests {
    /// A healthy secret, one never rotated, one stuck after a failed setSecret, one whose rotation
    /// began minutes ago, one with rotation off, and two that ListSecrets' prefix filters let through
    /// but that are not the fleet's.
    func fleet() -> FleetWorld {
        let world = FleetWorld()
        world.add("rotator/fleet/orders", login: "orders_app")
        world.add("rotator/fleet/billing", login: "billing", lastRotated: nil)
        world.add("rotator/fleet/stuck", login: "stuck_app", stages: [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]])
        world.created[FleetWorld.arnOf("rotator/fleet/stuck")] = now - 90 * minute
        world.failedStep("rotator/fleet/stuck", .setSecret,
                         .hostCommandFailed("i-0123456789abcdef0: Failed, exit code 5"), at: now - 60 * minute)
        world.add("rotator/fleet/young", login: "young_app", stages: [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]])
        world.created[FleetWorld.arnOf("rotator/fleet/young")] = now - 2 * minute
        world.add("rotator/fleet/off", login: "off_app", enabled: false)
        world.add("rotator/fleet-other/x", fleet: "fleet-other")
        world.add("elsewhere/y", fleet: "not-it", extraTags: ["Team": "fleet"])
        return world
    }

    @Test func eachEnrolledSecretIsOneLineWithItsStateAndTheSummaryCountsThem() throws {
        let world = fleet()
        let (code, out, err) = world.status()
        #expect(code == Operator.ExitCode.attention)
        #expect(err.isEmpty)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 7, "\(lines)")
        #expect(lines[0].split(separator: " ").joined(separator: " ") == "NAME LOGIN LAST ROTATED NEXT ROTATION STATE LAST FAILURE")
        // By name; the other fleet's secret and the one whose other tag holds the name are left out.
        let rows = columns(Array(lines[0...5]))
        let next = "2027-02-13 08:00:00 UTC", last = "2027-01-14 08:00:00 UTC"
        #expect(rows[0] == ["rotator/fleet/billing", "billing", "never", next, "OK", "-"])
        #expect(rows[1] == ["rotator/fleet/off", "off_app", last, next, "NOT CONFIGURED", "rotation is not enabled"])
        #expect(rows[2] == ["rotator/fleet/orders", "orders_app", last, next, "OK", "-"])
        #expect(rows[3] == ["rotator/fleet/stuck", "stuck_app", last, next, "STUCK",
                            "setSecret failed at 2027-01-15 07:00:00 UTC (HostCommandFailed): i-0123456789abcdef0: Failed, exit code 5"])
        #expect(rows[4][0...4] == ["rotator/fleet/young", "young_app", last, next, "IN PROGRESS"])
        #expect(rows[4][5].hasPrefix("version \(pendingId) holds AWSPENDING: a rotation began 2 min ago"))
        #expect(lines[6] == "5 secrets in fleet: 2 OK, 1 NOT CONFIGURED, 1 IN PROGRESS, 1 STUCK, 0 BROKEN, 0 OUT OF REACH")
    }

    @Test func onlyASecretWithAPendingRotationCostsCallsOfItsOwn() {
        let world = fleet()
        _ = world.status()
        let stuck = FleetWorld.arnOf("rotator/fleet/stuck"), young = FleetWorld.arnOf("rotator/fleet/young")
        #expect(world.calls == [
            "ListSecrets RotatorFleet=fleet", "GetFunctionConfiguration rotator",
            "ListSecretVersionIds \(stuck)", "GetSecretValue \(stuck)", "FilterLogEvents \(stuck)",
            "ListSecretVersionIds \(young)", "GetSecretValue \(young)", "FilterLogEvents \(young)",
        ])
    }

    @Test func secretsWithAPendingRotationAreReadAtMostTwiceASecond() {
        let world = FleetWorld()
        for n in 0..<8 {
            // Every other secret has a rotation pending (and so a log search); the others cost nothing.
            let pending = n % 2 == 0
            world.add("rotator/fleet/s\(n)", stages: pending ? [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]] : [currentId: ["AWSCURRENT"]])
        }
        _ = world.status()
        #expect(world.logSearches == [now, now + 500, now + 1_000, now + 1_500])
        #expect(world.clock.sleeps == [500, 500, 500])
    }

    /// Threat 41: whoever creates one secret of the fleet names it after another's ARN (the victim's
    /// name and suffix), so that its ARN contains the victim's, and floods the shared log group with
    /// its own step lines. The search asks for the SecretId member to equal the victim's ARN, so none
    /// of them takes the place of the victim's failure.
    @Test func aSecretNamedAfterAnothersARNDoesNotHideItsFailure() throws {
        let world = fleet()
        let victim = FleetWorld.arnOf("rotator/fleet/stuck")
        let attacker = "rotator/fleet/stuck-AbCdEf"
        #expect(FleetWorld.arnOf(attacker).contains(victim))
        world.add(attacker, login: "attacker_app")
        for n in 1...300 {
            world.failedStep(attacker, .setSecret, .hostCommandFailed("noise \(n)"), at: now - 30 * minute + Int64(n))
        }
        let (_, out, _) = world.status()
        let rows = columns(out.split(separator: "\n").map(String.init).dropLast())
        let row = try #require(rows.first { $0[0] == "rotator/fleet/stuck" })
        #expect(row[4...5] == ["STUCK", "setSecret failed at 2027-01-15 07:00:00 UTC (HostCommandFailed): i-0123456789abcdef0: Failed, exit code 5"])
        #expect(world.log.searches.contains { $0 == (member: "SecretId", value: victim) })
    }

    /// A search that kept only the newest of its matches says so on the secret's line: an older
    /// record may be missing, and the operator must not take what is shown for all there is.
    @Test func aSearchCutShortIsReportedNotSilent() throws {
        let world = fleet()
        for n in 1...200 {
            world.failedStep("rotator/fleet/stuck", .setSecret, .hostCommandFailed("again \(n)"), at: now - 50 * minute + Int64(n))
        }
        let (code, out, _) = world.status()
        #expect(code == Operator.ExitCode.attention)
        let rows = columns(out.split(separator: "\n").map(String.init).dropLast())
        let row = try #require(rows.first { $0[0] == "rotator/fleet/stuck" })
        #expect(row[5].hasPrefix("setSecret failed at 2027-01-15 07:10:00 UTC (HostCommandFailed): again 200 "))
        #expect(row[5].hasSuffix("(the function's log could not be read: the search was incomplete "
            + "(only the newest 200 of 201 matching events were kept))"))
    }

    @Test func theJSONDocumentCarriesTheSameFacts() throws {
        let world = fleet()
        let (code, out, _) = world.status(json: true)
        #expect(code == Operator.ExitCode.attention)
        let document = try JSON.parse(out)
        #expect(document["fleet"] == .string("fleet"))
        #expect(document["needsAttention"] == .bool(true))
        #expect(document["problems"] == .array([]))
        #expect(document["counts"] == .object([("healthy", .integer(2)), ("not-configured", .integer(1)), ("in-progress", .integer(1)),
                                               ("stuck", .integer(1)), ("broken", .integer(0)), ("out-of-reach", .integer(0))]))
        let secrets = try #require(document["secrets"]?.arrayValue)
        #expect(secrets.map { $0["name"]?.stringValue } == ["rotator/fleet/billing", "rotator/fleet/off", "rotator/fleet/orders",
                                                            "rotator/fleet/stuck", "rotator/fleet/young"])
        #expect(secrets.map { $0["login"]?.stringValue } == ["billing", "off_app", "orders_app", "stuck_app", "young_app"])
        #expect(secrets.map { $0["verdict"]?.stringValue } == ["healthy", "not-configured", "healthy", "stuck", "in-progress"])
        #expect(secrets[0]["lastRotated"] == .null && secrets[2]["lastRotated"] == .string("2027-01-14 08:00:00 UTC"))
        #expect(secrets[3]["secretArn"] == .string(FleetWorld.arnOf("rotator/fleet/stuck")))
        #expect(secrets[3]["lastFailure"]?["step"] == .string("setSecret"))
        #expect(secrets[3]["lastFailure"]?["reason"] == .string("HostCommandFailed"))
        #expect(secrets[3]["pendingVersion"] == .string(pendingId))
    }

    @Test func aHealthyFleetPassesAndAnEmptyOneNeedsAttention() {
        let world = FleetWorld()
        world.add("rotator/fleet/a")
        world.add("rotator/fleet/b", lastRotated: nil)
        #expect(world.status().0 == Operator.ExitCode.pass)
        let (code, out, _) = world.status(fleet: "flet")
        #expect(code == Operator.ExitCode.attention)
        #expect(out == "no secret carries the tag RotatorFleet=flet: is flet the shared stack's name?\n")
    }

    @Test func aListingThatFailsIsAnErrorNotAState() {
        let world = fleet()
        world.listFailure = serviceError("AccessDeniedException")
        let (code, out, err) = world.status()
        #expect(code == Operator.ExitCode.failure)
        #expect(out.isEmpty)
        #expect(err.hasPrefix("cannot status the fleet fleet: ") && err.contains("AccessDeniedException"))
    }

    /// Secret names and tag values are chosen by whoever creates secrets (and moto, like a forged
    /// answer, does not hold them to AWS's characters): none can start a line of its own, drive the
    /// terminal, or pass for two fields or for "none".
    @Test func hostileNamesAndTagsStayInTheirField() throws {
        let world = FleetWorld()
        world.add("rotator/fleet/a", login: "x\nrotator/fleet/forged  app  never  -  OK  -")
        world.add("rotator/fleet/b\u{1B}[2J\u{9B}31m", login: "two words")
        world.add("rotator/fleet/c", login: "-")
        world.add("rotator/fleet/d", login: nil, stages: [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]])
        world.created[FleetWorld.arnOf("rotator/fleet/d")] = now - 90 * minute
        world.failedStep("rotator/fleet/d", .setSecret, .hostCommandFailed("i-1: Failed\nOK forged\u{2028}"), at: now - 60 * minute)
        let (_, out, _) = world.status()
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 6, "\(lines)")
        #expect(!out.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || $0 == "\u{2028}" })
        let rows = columns(Array(lines[0...4]))
        #expect(rows.map { $0[0...1] } == [
            ["rotator/fleet/a", #""x\nrotator/fleet/forged  app  never  -  OK  -""#],
            [#""rotator/fleet/b\u{1B}[2J\u{009B}31m""#, #""two words""#],
            ["rotator/fleet/c", #""-""#],
            ["rotator/fleet/d", "-"],
        ])
        #expect(rows[3][4] == "STUCK" && rows[3][5].hasSuffix(#"i-1: Failed\nOK forged\u{2028}"#))
    }

    /// A secret can carry the fleet's tag and still be one the shared function cannot rotate: its
    /// role reaches only names under rotator/<fleet>/, and the value only of a secret with a
    /// RotatorLogin tag. Such a secret needs attention even when nothing else is wrong with it.
    @Test func aSecretTheSharedFunctionCannotReachNeedsAttention() throws {
        let world = FleetWorld()
        world.add("rotator/fleet/a")
        world.add("elsewhere/tagged")
        world.add("rotator/fleetwood/b")
        world.add("rotator/fleet/no-login", login: nil)
        world.add("rotator/fleet/empty-login", login: "")
        world.add("rotator/fleet/login-in-two-cases", extraTags: ["rotatorlogin": "billing"])
        world.add("rotator/fleet/stuck", login: nil, stages: [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]])
        world.created[FleetWorld.arnOf("rotator/fleet/stuck")] = now - 90 * minute
        let (code, out, _) = world.status()
        #expect(code == Operator.ExitCode.attention)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 9, "\(lines)")
        let rows = Dictionary(uniqueKeysWithValues: columns(Array(lines[0...7])).map { ($0[0], $0) })
        let outside = "out of the shared function's reach: not named under rotator/fleet/"
        let untagged = "out of the shared function's reach: no RotatorLogin tag"
        #expect(rows["rotator/fleet/a"]?[4...] == ["OK", "-"])
        #expect(rows["elsewhere/tagged"]?[4...] == ["OUT OF REACH", outside])
        #expect(rows["rotator/fleetwood/b"]?[4...] == ["OUT OF REACH", outside])
        #expect(rows["rotator/fleet/no-login"]?[4...] == ["OUT OF REACH", untagged])
        #expect(rows["rotator/fleet/empty-login"]?[4...] == ["OUT OF REACH", untagged])
        #expect(rows["rotator/fleet/login-in-two-cases"]?[4...] == [
            "OUT OF REACH", #"out of the shared function's reach: a tag "rotatorlogin" differs from RotatorLogin only in case"#])
        // Another problem keeps its state; the reach comes first in what is wrong.
        #expect(rows["rotator/fleet/stuck"]?[4] == "STUCK")
        #expect(rows["rotator/fleet/stuck"]?[5].hasPrefix(untagged + "; version \(pendingId) holds AWSPENDING") == true)
        #expect(lines[8] == "7 secrets in fleet: 1 OK, 0 NOT CONFIGURED, 0 IN PROGRESS, 1 STUCK, 0 BROKEN, 5 OUT OF REACH")

        let document = try JSON.parse(world.status(json: true).1)
        let secrets = try #require(document["secrets"]?.arrayValue)
        let reach = Dictionary(uniqueKeysWithValues: secrets.map { ($0["name"]?.stringValue ?? "", $0["outOfReach"]) })
        #expect(reach["rotator/fleet/a"] == .null && reach["elsewhere/tagged"] == .string(outside)
                && reach["rotator/fleet/stuck"] == .string(untagged))
        #expect(secrets.map { $0["state"]?.stringValue } == secrets.map { $0["name"]?.stringValue == "rotator/fleet/a" ? "healthy"
                    : $0["name"]?.stringValue == "rotator/fleet/stuck" ? "stuck" : "out-of-reach" })
        #expect(document["counts"] == .object([("healthy", .integer(1)), ("not-configured", .integer(0)), ("in-progress", .integer(0)),
                                               ("stuck", .integer(1)), ("broken", .integer(0)), ("out-of-reach", .integer(5))]))
    }

    /// A secret made by hand with the fleet's tags but on aws/secretsmanager or a key of its own:
    /// the role's deny stops every read of its value, so it is not OK however healthy its labels.
    /// Secrets Manager names the key as it was given, ARN or key ID; an alias is not the key.
    @Test func aSecretOnAnotherKeyThanTheFleetsIsOutOfReach() throws {
        let world = FleetWorld()
        world.add("rotator/fleet/by-arn")
        world.add("rotator/fleet/by-id", key: FleetWorld.fleetKeyId)
        world.add("rotator/fleet/default-key", key: nil)
        world.add("rotator/fleet/own-key", key: "arn:aws:kms:us-east-1:123456789012:key/ffffffff-0000-0000-0000-000000000000")
        world.add("rotator/fleet/alias", key: "arn:aws:kms:us-east-1:123456789012:alias/fleet")
        world.add("rotator/fleet/off", enabled: false, key: nil)
        let (code, out, _) = world.status()
        #expect(code == Operator.ExitCode.attention)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 8, "\(lines)")
        let rows = Dictionary(uniqueKeysWithValues: columns(Array(lines[0...6])).map { ($0[0], $0) })
        let notTheFleets = "not the fleet's key \(FleetWorld.fleetKey)"
        #expect(rows["rotator/fleet/by-arn"]?[4...] == ["OK", "-"])
        #expect(rows["rotator/fleet/by-id"]?[4...] == ["OK", "-"])
        #expect(rows["rotator/fleet/default-key"]?[4...] == [
            "OUT OF REACH", "out of the shared function's reach: encrypted with aws/secretsmanager, \(notTheFleets)"])
        #expect(rows["rotator/fleet/own-key"]?[4...] == ["OUT OF REACH", "out of the shared function's reach: encrypted with "
            + "arn:aws:kms:us-east-1:123456789012:key/ffffffff-0000-0000-0000-000000000000, \(notTheFleets)"])
        #expect(rows["rotator/fleet/alias"]?[4...] == ["OUT OF REACH", "out of the shared function's reach: encrypted with "
            + "arn:aws:kms:us-east-1:123456789012:alias/fleet, \(notTheFleets)"])
        // Without a rotation function there is no key to compare with: its state says what is wrong.
        #expect(rows["rotator/fleet/off"]?[4...] == ["NOT CONFIGURED", "rotation is not enabled"])
        #expect(lines[7] == "6 secrets in fleet: 2 OK, 1 NOT CONFIGURED, 0 IN PROGRESS, 0 STUCK, 0 BROKEN, 3 OUT OF REACH")
        // One configuration read for the whole fleet.
        #expect(world.calls == ["ListSecrets RotatorFleet=fleet", "GetFunctionConfiguration rotator"])
    }

    /// A shared function always names the fleet's key (template-fleet.yaml). A secret whose rotation
    /// function names none is rotated by something else: a single stack's function (which whoever
    /// creates the secret may point it at), or the shared function after someone emptied its
    /// SECRET_KEY_ARN (threat 38's D). Either way it is not OK, and its key cannot stand compared.
    @Test func aSecretRotatedByAFunctionThatNamesNoKeyIsOutOfReach() throws {
        let single = "arn:aws:lambda:us-east-1:123456789012:function:single-stack-rotator"
        let world = FleetWorld()
        world.add("rotator/fleet/a")
        world.add("rotator/fleet/elsewhere", key: nil, rotatedBy: single)
        world.functionKeys["single-stack-rotator"] = .some(nil)
        let (code, out, _) = world.status()
        #expect(code == Operator.ExitCode.attention)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 5, "\(lines)")
        let rows = Dictionary(uniqueKeysWithValues: columns(Array(lines[0...2])).map { ($0[0], $0) })
        #expect(rows["rotator/fleet/a"]?[4...] == ["OK", "-"])
        #expect(rows["rotator/fleet/elsewhere"]?[4...] == ["OUT OF REACH", "out of the shared function's reach: rotated by \(single), "
            + "which names no fleet key (SECRET_KEY_ARN): not a shared function, or its configuration was changed"])
        #expect(lines[3] == "2 secrets in fleet: 1 OK, 0 NOT CONFIGURED, 0 IN PROGRESS, 0 STUCK, 0 BROKEN, 1 OUT OF REACH")
        #expect(lines[4] == "the fleet's secrets name 2 rotation functions, where a fleet has one: \(function) (1 secret), \(single) (1 secret)")

        // The shared function itself with its key emptied: every secret it rotates is out of reach.
        world.functionKeys["rotator"] = .some(nil)
        let emptied = columns(world.status().1.split(separator: "\n").map(String.init).dropLast(2))
        #expect(emptied.map { $0[4] } == ["OUT OF REACH", "OUT OF REACH"])
        #expect(emptied[0][5].hasPrefix("out of the shared function's reach: rotated by \(function), which names no fleet key"))
    }

    /// The operator may lack lambda:GetFunctionConfiguration: the keys of the secrets naming that
    /// function are then not compared, which the report says once per function, and the fleet is
    /// not called healthy.
    @Test func aFleetWhoseKeyCannotBeReadIsNotCalledHealthy() throws {
        let world = FleetWorld()
        world.add("rotator/fleet/a")
        world.add("rotator/fleet/b", key: nil)
        world.functionFailures["rotator"] = serviceError("AccessDeniedException")
        let (code, out, _) = world.status()
        #expect(code == Operator.ExitCode.attention)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == 5, "\(lines)")
        #expect(columns(Array(lines[0...2])).map { Array($0[4...]) } == [["OK", "-"], ["OK", "-"]])
        #expect(lines[3] == "2 secrets in fleet: 2 OK, 0 NOT CONFIGURED, 0 IN PROGRESS, 0 STUCK, 0 BROKEN, 0 OUT OF REACH")
        #expect(lines[4].hasPrefix("the configuration of \(function) (2 secrets) could not be read, so its secrets' keys were not compared "
            + "with the fleet's: "))
        #expect(lines[4].contains("AccessDeniedException"))
        #expect(world.calls.filter { $0.hasPrefix("GetFunctionConfiguration") }.count == 1)

        let document = try JSON.parse(world.status(json: true).1)
        let problems = try #require(document["problems"]?.arrayValue)
        #expect(problems.count == 1 && problems[0].stringValue?.contains("AccessDeniedException") == true)
        #expect(document["needsAttention"] == .bool(true))
    }

    @Test func fleetIsForStatusOnlyAndTakesAStackName() throws {
        #expect(try OperatorArguments.parse(["status", "--fleet", "rotator", "--json"])
            == OperatorArguments(command: .status, target: .fleet("rotator"), json: true, force: false))
        #expect(try OperatorArguments.parse(["status", "--fleet=Fleet-2"]).target == .fleet("Fleet-2"))
        let cases: [([String], String)] = [
            (["doctor", "--fleet", "rotator"], "unexpected argument \"--fleet\""),
            (["cancel", "--fleet=rotator"], "unexpected argument \"--fleet=rotator\""),
            (["status", "--fleet"], "--fleet needs a value"),
            (["status", "--fleet", "rotator", "--secret-id", "s"], "give --secret-id or --fleet, not both"),
        ]
        for (arguments, message) in cases {
            #expect(throws: OperatorArguments.Problem.usage(message), "\(arguments)") { try OperatorArguments.parse(arguments) }
        }
        for bad in ["", "1fleet", "fleet/x", "fleet name", "fleet\n", String(repeating: "f", count: 129)] {
            #expect(throws: OperatorArguments.Problem.usage(
                "--fleet takes the shared stack's name: a letter, then letters, digits and hyphens, at most 128"), "\(bad)") {
                try OperatorArguments.parse(["status", "--fleet", bad])
            }
        }
    }
}
