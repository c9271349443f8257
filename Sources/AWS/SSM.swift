import RotatorJSON

public struct CommandInvocation: Sendable, Equatable {
    /// Pending, InProgress, Delayed, Success, Cancelled, TimedOut, Failed, Cancelling, ...
    public let status: String
    public let statusDetails: String
    /// -1 until the script has ended.
    public let responseCode: Int
    public let standardOutput: String
    public let standardError: String

    public init(status: String, statusDetails: String, responseCode: Int, standardOutput: String, standardError: String) {
        self.status = status
        self.statusDetails = statusDetails
        self.responseCode = responseCode
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    public var isFinished: Bool { CommandInvocation.isFinished(status: status) }

    /// Whether an invocation in this status has ended and will not change any more.
    public static func isFinished(status: String) -> Bool {
        !["Pending", "InProgress", "Delayed", "Cancelling"].contains(status)
    }
}

public struct SendCommandInput: Sendable {
    public var documentName: String
    /// The document version to run (`DocumentVersion`); `nil` sends none, so SSM runs the default
    /// version as it is when the command arrives. HostRunner always names the version it verified.
    public var documentVersion: String?
    public var instanceIds: [String]
    public var parameters: [(String, [String])]
    public var comment: String
    /// Delivery timeout: how long SSM tries to reach the agent (30 s at least).
    public var timeoutSeconds: Int

    public init(documentName: String, documentVersion: String? = nil, instanceIds: [String], parameters: [(String, [String])],
                comment: String, timeoutSeconds: Int) {
        self.documentName = documentName
        self.documentVersion = documentVersion
        self.instanceIds = instanceIds
        self.parameters = parameters
        self.comment = comment
        self.timeoutSeconds = timeoutSeconds
    }
}

/// The SSM Run Command operations the function calls.
public protocol RunCommandAPI: AnyObject {
    func sendCommand(_ input: SendCommandInput) throws(AWSError) -> String
    func getCommandInvocation(commandId: String, instanceId: String) throws(AWSError) -> CommandInvocation
    /// Instance id -> status for the invocations SSM knows of so far.
    func listCommandInvocations(commandId: String) throws(AWSError) -> [String: String]
    func cancelCommand(commandId: String, instanceIds: [String]) throws(AWSError)
}

/// What SSM knows of a managed instance (`DescribeInstanceInformation`).
public struct ManagedInstance: Sendable, Equatable {
    public let instanceId: String
    /// Online, ConnectionLost, Inactive.
    public let pingStatus: String
    /// Linux, Windows, MacOS.
    public let platformType: String
    public let platformName: String?
    public let agentVersion: String?

    public init(instanceId: String, pingStatus: String, platformType: String, platformName: String?, agentVersion: String?) {
        self.instanceId = instanceId
        self.pingStatus = pingStatus
        self.platformType = platformType
        self.platformName = platformName
        self.agentVersion = agentVersion
    }
}

/// A document as `GetDocument` returns it, its content asked for as JSON (SSM converts a YAML one).
public struct SSMDocument: Sendable, Equatable {
    public let name: String
    /// The version read: the default one when it was asked for, which `SendCommand` without
    /// `DocumentVersion` runs only until another version becomes the default; name it to run this one.
    public let documentVersion: String?
    public let documentType: String?
    public let status: String?
    /// The document's content, a JSON text.
    public let content: String

    public init(name: String, documentVersion: String?, documentType: String?, status: String?, content: String) {
        self.name = name
        self.documentVersion = documentVersion
        self.documentType = documentType
        self.status = status
        self.content = content
    }
}

/// Reading a document: the function and the operator commands prove a document is the one this
/// rotator ships before they send a command through it.
public protocol SSMDocumentAPI: AnyObject {
    /// The document's default version with its content as JSON, `nil` if not found.
    func getDocument(name: String) throws(AWSError) -> SSMDocument?
}

/// What the operator commands ask SSM besides running commands.
public protocol SSMInventoryAPI: SSMDocumentAPI {
    /// The instances among `instanceIds` that SSM manages; an id it does not know is absent.
    func describeInstanceInformation(instanceIds: [String]) throws(AWSError) -> [ManagedInstance]
    /// Whether a document of this name exists and can be read (its status, e.g. `Active`), `nil` if not found.
    func documentStatus(name: String) throws(AWSError) -> String?
}

public final class SSMClient: RunCommandAPI, SSMInventoryAPI {
    private let json: JSONProtocolClient

    public init(_ client: AWSServiceClient) {
        json = JSONProtocolClient(client: client, targetPrefix: "AmazonSSM")
    }

    public func sendCommand(_ input: SendCommandInput) throws(AWSError) -> String {
        var body: [(String, JSON)] = [("DocumentName", .string(input.documentName))]
        if let version = input.documentVersion { body.append(("DocumentVersion", .string(version))) }
        body += [
            ("InstanceIds", .array(input.instanceIds.map(JSON.string))),
            ("Parameters", .object(input.parameters.map { ($0.0, .array($0.1.map(JSON.string))) })),
            ("Comment", .string(input.comment)),
            ("TimeoutSeconds", .integer(input.timeoutSeconds)),
        ]
        let out = try json.call("SendCommand", .object(body))
        guard let id = out["Command"]?["CommandId"]?.stringValue else {
            throw .malformedResponse(operation: "SendCommand", reason: "no CommandId")
        }
        return id
    }

    public func getCommandInvocation(commandId: String, instanceId: String) throws(AWSError) -> CommandInvocation {
        let out = try json.call("GetCommandInvocation", .object([
            ("CommandId", .string(commandId)), ("InstanceId", .string(instanceId)),
        ]))
        guard let status = out["Status"]?.stringValue else {
            throw .malformedResponse(operation: "GetCommandInvocation", reason: "no Status")
        }
        return CommandInvocation(
            status: status,
            statusDetails: out["StatusDetails"]?.stringValue ?? status,
            responseCode: out["ResponseCode"]?.intValue ?? -1,
            standardOutput: out["StandardOutputContent"]?.stringValue ?? "",
            standardError: out["StandardErrorContent"]?.stringValue ?? "")
    }

    public func listCommandInvocations(commandId: String) throws(AWSError) -> [String: String] {
        let out = try json.call("ListCommandInvocations", .object([("CommandId", .string(commandId))]))
        var statuses: [String: String] = [:]
        for item in out["CommandInvocations"]?.arrayValue ?? [] {
            if let id = item["InstanceId"]?.stringValue, let status = item["Status"]?.stringValue { statuses[id] = status }
        }
        return statuses
    }

    public func cancelCommand(commandId: String, instanceIds: [String]) throws(AWSError) {
        _ = try json.call("CancelCommand", .object([
            ("CommandId", .string(commandId)), ("InstanceIds", .array(instanceIds.map(JSON.string))),
        ]))
    }

    public func describeInstanceInformation(instanceIds: [String]) throws(AWSError) -> [ManagedInstance] {
        var instances: [ManagedInstance] = []
        let filters: JSON = .array([.object([("Key", .string("InstanceIds")), ("Values", .array(instanceIds.map(JSON.string)))])])
        try json.callEveryPage("DescribeInstanceInformation", [("Filters", filters)]) { out throws(AWSError) in
            for item in out["InstanceInformationList"]?.arrayValue ?? [] {
                guard let id = item["InstanceId"]?.stringValue else {
                    throw .malformedResponse(operation: "DescribeInstanceInformation", reason: "an entry without InstanceId")
                }
                instances.append(ManagedInstance(
                    instanceId: id, pingStatus: item["PingStatus"]?.stringValue ?? "Unknown",
                    platformType: item["PlatformType"]?.stringValue ?? "Unknown",
                    platformName: item["PlatformName"]?.stringValue, agentVersion: item["AgentVersion"]?.stringValue))
            }
        }
        return instances
    }

    public func documentStatus(name: String) throws(AWSError) -> String? {
        do {
            let out = try json.call("DescribeDocument", .object([("Name", .string(name))]))
            return out["Document"]?["Status"]?.stringValue ?? "Unknown"
        } catch where error.isServiceError("InvalidDocument") {
            return nil
        }
    }

    public func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        let out: JSON
        do {
            out = try json.call("GetDocument", .object([("Name", .string(name)), ("DocumentFormat", .string("JSON"))]))
        } catch where error.isServiceError("InvalidDocument") {
            return nil
        }
        guard let content = out["Content"]?.stringValue else {
            throw .malformedResponse(operation: "GetDocument", reason: "no Content")
        }
        return SSMDocument(name: out["Name"]?.stringValue ?? name, documentVersion: out["DocumentVersion"]?.stringValue,
                           documentType: out["DocumentType"]?.stringValue, status: out["Status"]?.stringValue, content: content)
    }
}
