/// The operator commands, run by the same binary outside Lambda.
public enum OperatorCommandName: String, CaseIterable, Sendable {
    case status, doctor, cancel

    var summary: String {
        switch self {
        case .status: return "versions, stages, schedule, and what is wrong with a stuck rotation; --fleet: every secret of a fleet"
        case .doctor: return "preflight before the first rotation: each check, pass or fail with the fix"
        case .cancel: return "abandon a stuck rotation, only once every host accepts AWSCURRENT"
        }
    }
}

/// `rotator <status|doctor|cancel> --secret-id <name or ARN> [--json] [--force]`,
/// `rotator status --fleet <shared stack name> [--json]`
public struct OperatorArguments: Equatable, Sendable {
    /// What a command looks at: one secret, or (status only) every secret enrolled in a shared stack.
    public enum Target: Equatable, Sendable {
        case secret(String)
        case fleet(String)
    }

    public let command: OperatorCommandName
    public let target: Target
    public let json: Bool
    /// cancel only: go ahead although the pending version is young enough to be a running rotation.
    public let force: Bool

    public init(command: OperatorCommandName, target: Target, json: Bool, force: Bool) {
        self.command = command
        self.target = target
        self.json = json
        self.force = force
    }

    public init(command: OperatorCommandName, secretId: String, json: Bool, force: Bool) {
        self.init(command: command, target: .secret(secretId), json: json, force: force)
    }

    public var secretId: String? {
        if case .secret(let id) = target { return id }
        return nil
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case help
        case usage(String)
        public var description: String {
            switch self {
            case .help: return OperatorArguments.usage
            case .usage(let message): return "\(message)\n\n\(OperatorArguments.usage)"
            }
        }
    }

    public static var usage: String {
        (["usage: rotator <command> --secret-id <secret name or ARN> [--json]",
          "       rotator status --fleet <shared stack name> [--json]", "", "commands:"]
            + OperatorCommandName.allCases.map { "  \($0.rawValue.padding(8))\($0.summary)" }
            + ["", "options:",
               "  --secret-id ID  the secret (name or ARN)",
               "  --fleet STACK   status: every secret tagged \(FleetStatusReport.fleetTag)=STACK, one line each",
               "  --json          one JSON document on standard output, for scripts",
               "  --force         cancel: even if the rotation may still be running",
               "",
               "Credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,",
               "AWS_REGION (or AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL; `make status|doctor|cancel` fills them",
               "from an AWS CLI profile. Exit status: 0 pass, 1 attention needed, 2 usage or AWS error."])
            .joined(separator: "\n")
    }

    public static func parse(_ arguments: [String]) throws(Problem) -> OperatorArguments {
        guard let first = arguments.first else { throw .usage("no command given") }
        if ["-h", "--help", "help"].contains(first) { throw .help }
        guard let command = OperatorCommandName(rawValue: first) else {
            throw .usage("unknown command \"\(first.prefix(40))\"")
        }
        var secretId: String?
        var fleet: String?
        var json = false
        var force = false
        var rest = arguments.dropFirst()[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "-h", "--help": throw .help
            case "--json": json = true
            case "--force" where command == .cancel: force = true
            case "--secret-id":
                guard let value = rest.popFirst() else { throw .usage("--secret-id needs a value") }
                secretId = value
            case _ where argument.hasPrefix("--secret-id="):
                secretId = String(argument.dropFirst("--secret-id=".count))
            case "--fleet" where command == .status:
                guard let value = rest.popFirst() else { throw .usage("--fleet needs a value") }
                fleet = value
            case _ where argument.hasPrefix("--fleet=") && command == .status:
                fleet = String(argument.dropFirst("--fleet=".count))
            default:
                throw .usage("unexpected argument \"\(argument.prefix(40))\"")
            }
        }
        if let fleet {
            guard secretId == nil else { throw .usage("give --secret-id or --fleet, not both") }
            // The shared stack's name, as CloudFormation allows it: the tag value is compared
            // exactly, and nothing else can be taken for part of it.
            guard isStackName(fleet) else {
                throw .usage("--fleet takes the shared stack's name: a letter, then letters, digits and hyphens, at most 128")
            }
            return OperatorArguments(command: command, target: .fleet(fleet), json: json, force: force)
        }
        guard let secretId, !secretId.isEmpty else { throw .usage("--secret-id is required") }
        guard secretId.utf8.count <= 2048, !secretId.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw .usage("--secret-id is too long or holds control characters")
        }
        return OperatorArguments(command: command, secretId: secretId, json: json, force: force)
    }

    /// `^[A-Za-z][A-Za-z0-9-]{0,127}$`, CloudFormation's stack names.
    static func isStackName(_ s: String) -> Bool {
        let letter: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("A"..."Z").contains($0) }
        guard let first = s.unicodeScalars.first, letter(first), s.unicodeScalars.count <= 128 else { return false }
        return s.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}
