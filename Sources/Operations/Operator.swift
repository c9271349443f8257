import AWS
import HTTP
import RotatorJSON
import Rotation

/// Why an operator command could not do its work (as opposed to finding something wrong).
public struct OperatorError: Error, CustomStringConvertible {
    public let description: String

    static func wrap<T>(_ call: () throws(AWSError) -> T) throws(OperatorError) -> T {
        do { return try call() } catch { throw OperatorError(description: error.description) }
    }
}

/// The operator commands' entry point: `rotator <command> ...` outside Lambda.
public enum Operator {
    public enum ExitCode {
        public static let pass: Int32 = 0
        public static let attention: Int32 = 1
        public static let failure: Int32 = 2
    }

    public static func main(arguments: [String], environment: [String: String], http: HTTPClient, clock: MillisecondClock) -> Int32 {
        let parsed: OperatorArguments
        do {
            parsed = try OperatorArguments.parse(arguments)
        } catch .help {
            Console.standard(json: false).line(OperatorArguments.usage)
            return ExitCode.pass
        } catch {
            Console.standard(json: false).warning(error.description)
            return ExitCode.failure
        }
        let console = Console.standard(json: parsed.json)
        let services: OperatorServices
        do {
            services = try OperatorServices.fromEnvironment(environment, http: http, clock: clock)
        } catch {
            console.warning("\(error): the operator commands read credentials and region from the environment "
                + "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION); "
                + "`make \(parsed.command.rawValue) SECRET_ID=...` exports them from an AWS CLI profile")
            return ExitCode.failure
        }
        return run(parsed, services: services, console: console)
    }

    public static func run(_ arguments: OperatorArguments, services: OperatorServices, console: Console) -> Int32 {
        let what: String
        switch arguments.target {
        case .secret(let secretId): what = secretId
        case .fleet(let fleet): what = "the fleet \(fleet)"
        }
        do throws(OperatorError) {
            switch (arguments.command, arguments.target) {
            case (.status, .fleet(let fleet)):
                return try FleetStatusCommand(services: services, console: console).run(fleet: fleet)
            case (_, .fleet):
                throw OperatorError(description: "--fleet is for status only")   // the parser refuses it first
            case (.status, .secret(let secretId)):
                return try StatusCommand(services: services, console: console).run(secretId: secretId)
            case (.doctor, .secret(let secretId)):
                return try DoctorCommand(services: services, console: console).run(secretId: secretId)
            case (.cancel, .secret(let secretId)):
                return try CancelCommand(services: services, console: console).run(secretId: secretId, force: arguments.force)
            }
        } catch {
            if console.json {
                console.document(.object([("error", .string(error.description))]))
            }
            console.warning("cannot \(arguments.command.rawValue) \(what): \(error)")
            return ExitCode.failure
        }
    }
}
