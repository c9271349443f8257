import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP client over one reused libcurl easy handle, so connections stay alive between
/// the calls of an invocation (and across invocations of a warm function).
///
/// Not thread-safe: the function is one blocking loop, and each loop owns its client.
public final class CurlHTTPClient: HTTPClient {
    private let handle: UnsafeMutableRawPointer
    private let connectTimeoutMilliseconds: Int
    private let caBundlePath: String?

    /// - Parameter caBundlePath: certificates for https; see ``CurlHTTPClient/defaultCABundle(environment:fileExists:)``.
    public init(connectTimeoutMilliseconds: Int = 3_000, caBundlePath: String?) {
        _ = CurlHTTPClient.globalInit
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.caBundlePath = caBundlePath
    }

    deinit { curl_easy_cleanup(handle) }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// `SSL_CERT_FILE` when set, else Amazon Linux's bundle (what Lambda has), else Debian's.
    public static func defaultCABundle(environment: [String: String], fileExists: (String) -> Bool) -> String? {
        if let path = environment["SSL_CERT_FILE"], !path.isEmpty { return path }
        return ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"].first(where: fileExists)
    }

    public func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        // Options from the previous request must not leak into this one; the connection cache survives.
        curl_easy_reset(handle)
        let collector = ResponseCollector()
        let context = Unmanaged.passRetained(collector)
        defer { context.release() }

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        // libcurl would add `Expect: 100-continue` to larger POSTs and `Accept: */*` on its own.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:", "Accept:"] {
            headerList = curl_slist_append(headerList, line)
        }
        defer { curl_slist_free_all(headerList) }

        let result: CURLcode = request.body.withUnsafeBufferPointer { body in
            setOptions(request, body: body, headers: headerList, context: context.toOpaque())
            return curl_easy_perform(handle)
        }
        guard result == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(result))
            throw TransportError(code: Int(result.rawValue), message: message, isTimeout: result == CURLE_OPERATION_TIMEDOUT)
        }
        var status = 0
        _ = rotator_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: collector.headers, body: collector.body)
    }

    private func setOptions(_ request: HTTPRequest, body: UnsafeBufferPointer<UInt8>,
                            headers: UnsafeMutablePointer<curl_slist>?, context: UnsafeMutableRawPointer) {
        _ = rotator_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = rotator_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        if request.method == "POST" || !body.isEmpty {
            _ = rotator_curl_setopt_long(handle, CURLOPT_POST, 1)
            _ = rotator_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress))
            _ = rotator_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
        }
        _ = rotator_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
        _ = rotator_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = rotator_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds)
        _ = rotator_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeoutMilliseconds ?? 0)
        // TLS is verified always; there is deliberately no switch to turn it off.
        _ = rotator_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        _ = rotator_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        if let caBundlePath { _ = rotator_curl_setopt_string(handle, CURLOPT_CAINFO, caBundlePath) }
        _ = rotator_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = rotator_curl_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, collectBody)
        _ = rotator_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        _ = rotator_curl_setopt_write_function(handle, CURLOPT_HEADERFUNCTION, collectHeader)
        _ = rotator_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
    }
}

private final class ResponseCollector {
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
}

private func collectBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    data.withMemoryRebound(to: UInt8.self, capacity: length) { collector.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
    return length
}

private func collectHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    // Trim bytes, not Characters: Swift reads "\r\n" as one Character that equals neither.
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes -> String in
        var end = length
        while end > 0, [0x0D, 0x0A, 0x20, 0x09].contains(bytes[end - 1]) { end -= 1 }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: end), as: UTF8.self)
    }
    if line.hasPrefix("HTTP/") {
        // A new status line (after a 100 Continue or a redirect) starts a new header block.
        collector.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let value = line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })
        collector.headers.append((String(line[..<colon]), String(value)))
    }
    return length
}
