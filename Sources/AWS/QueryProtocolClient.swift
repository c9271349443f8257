import HTTP
import SigV4

/// The AWS Query protocol, spoken by SNS: a form-encoded POST answered with XML.
struct QueryProtocolClient {
    let client: AWSServiceClient
    let apiVersion: String

    func call(_ action: String, _ parameters: [(String, String)]) throws(AWSError) -> String {
        let form = FormEncoding.body([("Action", action), ("Version", apiVersion)] + parameters)
        let response = try client.perform(
            operation: action, contentType: "application/x-www-form-urlencoded; charset=utf-8", extraHeaders: [],
            body: Array(form.utf8), parseError: QueryProtocolClient.parseError)
        return response.bodyText
    }

    /// `<ErrorResponse><Error><Code>..</Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>`
    static func parseError(_ response: HTTPResponse) -> AWSServiceError {
        let xml = response.bodyText
        return AWSServiceError(
            code: XML.text(of: "Code", in: xml) ?? "HTTP\(response.status)",
            message: XML.text(of: "Message", in: xml) ?? "",
            httpStatus: response.status,
            requestId: XML.text(of: "RequestId", in: xml) ?? response.header("x-amzn-RequestId"))
    }
}

/// A Query request's body exactly as botocore writes it: its `AWSRequestPreparer` joins the
/// parameters in order with `urllib.parse.urlencode` (`quote_plus`: a space is `+`). AWS hashes the
/// body as received, so any correct form encoding signs; but whoever re-encodes the parsed form
/// before checking the signature (moto does, with botocore's rules) accepts only this one.
enum FormEncoding {
    static func body(_ parameters: [(String, String)]) -> String {
        parameters.map { "\(URIEncoding.formEncode($0.0))=\(URIEncoding.formEncode($0.1))" }.joined(separator: "&")
    }
}

/// Just enough XML reading for Query responses: the text of the first element with a given name.
enum XML {
    static func text(of element: String, in xml: String) -> String? {
        guard let open = xml.firstRange(of: "<\(element)>"),
              let close = xml[open.upperBound...].firstRange(of: "</\(element)>") else { return nil }
        return unescape(xml[open.upperBound..<close.lowerBound])
    }

    static func unescape(_ text: Substring) -> String {
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "lt": out += "<"
            case "gt": out += ">"
            case "amp": out += "&"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) {
                    out.unicodeScalars.append(s)
                } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let s = Unicode.Scalar(v) {
                    out.unicodeScalars.append(s)
                } else {
                    out += rest[amp...semi]
                }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}
