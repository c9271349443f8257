import AWS
import RotatorJSON
import Rotation

/// One preflight check: passed, failed (with the fix) or skipped (an earlier check failed).
public struct Check: Equatable, Sendable {
    public enum Result: String, Sendable { case pass, fail, skip }
    public let name: String
    public let result: Result
    public let detail: String
    public let fix: String?

    public static func pass(_ name: String, _ detail: String) -> Check { Check(name: name, result: .pass, detail: detail, fix: nil) }
    public static func fail(_ name: String, _ detail: String, fix: String) -> Check { Check(name: name, result: .fail, detail: detail, fix: fix) }
    public static func skip(_ name: String, _ detail: String) -> Check { Check(name: name, result: .skip, detail: detail, fix: nil) }

    /// `PASS  secret JSON                 engine postgres, ...` and for a failure ` -> fix: ...`.
    public var line: String {
        (result.rawValue.uppercased().padding(6) + name.padding(30) + detail) + (fix.map { " -> fix: \($0)" } ?? "")
    }

    public var json: JSON {
        .object([("check", .string(name)), ("result", .string(result.rawValue)), ("detail", .string(detail)),
                 ("fix", fix.map(JSON.string) ?? .null)])
    }
}

/// `rotator doctor`: everything a first rotation needs, checked in order, one line per check.
struct DoctorCommand {
    let services: OperatorServices
    let console: Console

    func run(secretId: String) throws(OperatorError) -> Int32 {
        var checks: [Check] = []
        func report(_ check: Check) {
            checks.append(check)
            console.line(check.line)
        }
        defer {
            if console.json {
                console.document(.object([("secretId", .string(secretId)),
                                          ("passed", .bool(!checks.contains { $0.result == .fail })),
                                          ("checks", .array(checks.map(\.json)))]))
            }
        }
        console.progress("doctor: reading the secret", milestone: true)
        let description: SecretDescription
        do {
            description = try services.secrets.describeSecret(secretId)
            report(.pass("secret", description.arn))
        } catch {
            report(.fail("secret", error.description, fix: "check the name or ARN, the region, and that you may call secretsmanager:DescribeSecret"))
            return Operator.ExitCode.attention
        }
        let current = readCurrent(description, report: report)

        if description.rotationEnabled == true, let function = description.rotationLambdaArn {
            report(.pass("rotation configured", "function \(function), \(description.rotationSchedule?.summary ?? "no schedule")"))
        } else {
            report(.fail("rotation configured", description.rotationEnabled == true ? "no rotation function" : "rotation is not enabled",
                         fix: "deploy the stack (docs/deploying.md), or aws secretsmanager rotate-secret --secret-id \(secretId) "
                            + "--rotation-lambda-arn <function ARN> --rotation-rules ScheduleExpression=..."))
        }
        if let pending = description.unfinishedRotationVersion {
            report(.fail("no rotation unfinished", "version \(pending) holds AWSPENDING",
                         fix: "rotator status --secret-id \(secretId) says why and what to do"))
        } else {
            report(.pass("no rotation unfinished", "no version holds AWSPENDING alone"))
        }

        let document = checkDocument(description, engine: current?.secret.engine, report: report)
        let reachable = checkInstances(current?.secret, report: report)

        guard let current, let document, !reachable.isEmpty else {
            report(.skip("hosts log in with AWSCURRENT", "needs a readable secret, its SSM document and an online instance"))
            return Operator.ExitCode.attention
        }
        if current.secret.passwordIsPlaceholder {
            // No host has the password the deployment wrote: a login with it proves nothing yet.
            report(.skip("hosts log in with AWSCURRENT", "AWSCURRENT holds the deployment's placeholder password, which no host "
                + "has before the first rotation (make rotate sets it; a failed one restores nothing)"))
            return checks.contains { $0.result == .fail } ? Operator.ExitCode.attention : Operator.ExitCode.pass
        }
        let results: [InstanceResult]
        do {
            results = try CurrentLoginProof(ssm: services.ssm, documents: document.names, verifier: document.verifier, console: console,
                                            clock: services.clock)
                .run(secretArn: description.arn, currentVersionId: current.versionId, engine: current.secret.engine,
                     instanceIds: reachable, purpose: "doctor")
        } catch {
            report(.fail("hosts log in with AWSCURRENT", error.description, fix: "the operator needs ssm:SendCommand and ssm:GetCommandInvocation"))
            return Operator.ExitCode.attention
        }
        for result in results {
            if result.succeeded {
                report(.pass("\(result.instanceId) logs in", "the login accepts AWSCURRENT's password"))
            } else {
                report(.fail("\(result.instanceId) logs in", result.summary,
                             fix: "the script's exit code is explained in docs/host-contract.md; the host's role must allow "
                                + "secretsmanager:GetSecretValue, and the login's password must be AWSCURRENT's"))
            }
        }
        return checks.contains { $0.result == .fail } ? Operator.ExitCode.attention : Operator.ExitCode.pass
    }

    private func readCurrent(_ description: SecretDescription, report: (Check) -> Void) -> (versionId: String, secret: DatabaseSecret)? {
        let value: SecretValue
        do {
            value = try services.secrets.getSecretValue(description.arn, .stage(SecretStage.current))
        } catch {
            report(.fail("secret JSON", "cannot read AWSCURRENT: \(error)", fix: "you need secretsmanager:GetSecretValue and kms:Decrypt on the secret's key"))
            return nil
        }
        do {
            let secret = try DatabaseSecret.parse(value.secretString)
            report(.pass("secret JSON", "engine \(secret.engine.rawValue), username \(secret.username), "
                + "\(secret.instanceIds.count) instance(s), password present"))
            return (value.versionId, secret)
        } catch {
            report(.fail("secret JSON", error.description,
                         fix: "store engine, host, port, username, password, dbname and instanceIds (README, \"The secret\")"))
            return nil
        }
    }

    /// The function's document for the engine, when it exists and is the one this rotator ships: its
    /// name, and the verifier that proved it (and remembers the version it read).
    private func checkDocument(_ description: SecretDescription, engine: Engine?,
                               report: (Check) -> Void) -> (names: [Engine: String], verifier: DocumentVerifier)? {
        guard let functionArn = description.rotationLambdaArn, let engine else {
            report(.skip("SSM document", "needs the rotation function and the secret's engine"))
            return nil
        }
        let function: FunctionSettings
        do {
            function = try services.rotationFunction(functionArn)
        } catch {
            report(.fail("SSM document", "cannot read the function's configuration: \(error)",
                         fix: "you need lambda:GetFunctionConfiguration on \(functionArn), and the function must exist"))
            return nil
        }
        let documents = services.documents(of: function)
        guard let name = documents[engine] else {
            report(.fail("SSM document", "the function has no \(engine.documentVariable)",
                         fix: "deploy the stack from template.yaml, which sets it"))
            return nil
        }
        do {
            guard let status = try services.ssm.documentStatus(name: name) else {
                report(.fail("SSM document", "\(name) does not exist", fix: "deploy the stack from template.yaml, which creates it"))
                return nil
            }
            guard status == "Active" else {
                report(.fail("SSM document", "\(name) is \(status)", fix: "wait for it to become Active, or redeploy"))
                return nil
            }
        } catch {
            report(.fail("SSM document", "cannot describe \(name): \(error)", fix: "you need ssm:DescribeDocument"))
            return nil
        }
        // Run nothing the stack did not ship: the environment may have been pointed at another document.
        let verifier = services.documentVerifier()
        do {
            _ = try verifier.verified(name, engine: engine, ssm: services.ssm)
        } catch {
            report(.fail("SSM document", error.description, fix: error.fix))
            return nil
        }
        report(.pass("SSM document", "\(name) for \(engine.rawValue), the one this rotator ships"))
        return ([engine: name], verifier)
    }

    /// Each instance online in SSM on the engine's platform; returns those that are.
    private func checkInstances(_ secret: DatabaseSecret?, report: (Check) -> Void) -> [String] {
        guard let secret else {
            report(.skip("instances", "needs the secret's instanceIds"))
            return []
        }
        let known: [ManagedInstance]
        do {
            known = try services.ssm.describeInstanceInformation(instanceIds: secret.instanceIds)
        } catch {
            report(.fail("instances", "cannot ask SSM: \(error)", fix: "you need ssm:DescribeInstanceInformation"))
            return []
        }
        var reachable: [String] = []
        for id in secret.instanceIds {
            let name = "\(id) in SSM"
            guard let instance = known.first(where: { $0.instanceId == id }) else {
                report(.fail(name, "not a managed instance",
                             fix: "run the SSM agent on it and give it an instance profile with AmazonSSMManagedInstanceCore (docs/deploying.md)"))
                continue
            }
            guard instance.pingStatus == "Online" else {
                report(.fail(name, "PingStatus \(instance.pingStatus)",
                             fix: "start the instance and its SSM agent, and let it reach the SSM endpoints"))
                continue
            }
            guard instance.platformType == secret.engine.platformType else {
                report(.fail(name, "\(instance.platformType) host, but \(secret.engine.rawValue) runs on \(secret.engine.platformType)",
                             fix: "instanceIds must name the database's own hosts"))
                continue
            }
            let minimum = SSMAgentVersion.minimumForDocuments
            guard let reported = instance.agentVersion, let agent = SSMAgentVersion(reported), agent >= minimum else {
                report(.fail(name, "\(instance.agentVersion.map { "SSM agent \($0)" } ?? "no SSM agent version reported"): the documents "
                    + "need \(minimum) or newer (their parameters reach the script as SSM_<Name> environment variables)",
                             fix: "update the agent (the AWS-UpdateSSMAgent document through Run Command, or the OS package), "
                                + "then run doctor again (docs/deploying.md, \"2. Prepare the database hosts\")"))
                continue
            }
            report(.pass(name, "Online, \(instance.platformName ?? instance.platformType), agent \(agent)"))
            reachable.append(id)
        }
        return reachable
    }
}
