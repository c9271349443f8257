/// Publishing an alert.
public protocol NotificationAPI: AnyObject {
    func publish(topicArn: String, subject: String, message: String) throws(AWSError)
}

public final class SNSClient: NotificationAPI {
    private let query: QueryProtocolClient

    public init(_ client: AWSServiceClient) {
        query = QueryProtocolClient(client: client, apiVersion: "2010-03-31")
    }

    public func publish(topicArn: String, subject: String, message: String) throws(AWSError) {
        let xml = try query.call("Publish", [("TopicArn", topicArn), ("Subject", subject), ("Message", message)])
        guard XML.text(of: "MessageId", in: xml) != nil else {
            throw .malformedResponse(operation: "Publish", reason: "no MessageId")
        }
    }
}
