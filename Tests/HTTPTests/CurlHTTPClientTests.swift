import Glibc
import HTTP
import RotatorTestSupport
import Synchronization
import Testing

/// Bytes 0...255 repeated: binary, with NULs and CR/LF inside.
func binaryBody(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 256) } }

@Suite struct CurlHTTPClientTests {
    @Test func postBodyAndHeadersArriveWithoutExpectOrAccept() throws {
        let server = try TestServer(status: 200, body: Array("ok".utf8))
        defer { server.stop() }
        let client = CurlHTTPClient(caBundlePath: nil)
        // libcurl adds `Expect: 100-continue` above 1 KiB (before 7.69) or 1 MiB (since): send more than both.
        let body = binaryBody(2 * 1024 * 1024 + 3)
        let response = try client.send(HTTPRequest(
            method: "POST", url: server.url + "/submit",
            headers: [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "secretsmanager.DescribeSecret"),
                      ("X-Test", "one two")],
            body: body, timeoutMilliseconds: 5000))
        #expect(response.status == 200)
        #expect(response.body == Array("ok".utf8))

        let received = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(received.method == "POST")
        #expect(received.target == "/submit")
        #expect(received.body == body)
        #expect(received.header("Content-Length") == "2097155")
        #expect(received.header("Content-Type") == "application/x-amz-json-1.1")
        #expect(received.header("X-Amz-Target") == "secretsmanager.DescribeSecret")
        #expect(received.header("X-Test") == "one two")
        #expect(received.header("Expect") == nil)
        #expect(received.header("Accept") == nil)
        #expect(received.header("Transfer-Encoding") == nil)
    }

    @Test func explicitHostHeaderIsSentOnceAsGiven() throws {
        // SigV4 signs the Host header; what arrives must be exactly what was signed.
        let server = try TestServer(status: 200)
        defer { server.stop() }
        let client = CurlHTTPClient(caBundlePath: nil)
        _ = try client.send(HTTPRequest(method: "POST", url: server.url + "/", headers: [("Host", "secretsmanager.local:4566")],
                                        body: Array("{}".utf8), timeoutMilliseconds: 5000))
        let received = try #require(server.requests.first)
        #expect(received.headerValues("Host") == ["secretsmanager.local:4566"])
    }

    @Test func responseStatusHeadersAndBodyAreParsed() throws {
        let body = binaryBody(200_000) // several write callbacks
        let server = try TestServer(status: 201, reason: "Created", headers: [
            ("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "c0ffee-1"), ("X-Padded", "value  "),
        ], body: body)
        defer { server.stop() }
        let response = try CurlHTTPClient(caBundlePath: nil).send(HTTPRequest(method: "GET", url: server.url + "/x?y=1",
                                                                               timeoutMilliseconds: 5000))
        #expect(response.status == 201)
        #expect(response.header("X-Amzn-RequestId") == "c0ffee-1")
        #expect(response.header("content-type") == "application/x-amz-json-1.1")
        #expect(response.header("X-Padded") == "value")
        #expect(response.header("Content-Length") == "200000")
        #expect(response.body == body)
        #expect(!response.headers.contains { $0.name.hasPrefix("HTTP/") || $0.value.hasSuffix("\r\n") })
        let received = try #require(server.requests.first)
        #expect(received.method == "GET")
        #expect(received.target == "/x?y=1")
        #expect(received.body.isEmpty)
    }

    @Test func headerValuesCarryNoLineEnding() throws {
        // What the Runtime API answers /next with: the deadline must read as a number, the request id
        // must be usable in the next URL path.
        let server = try TestServer(status: 200, headers: [
            ("Lambda-Runtime-Aws-Request-Id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd"),
            ("Lambda-Runtime-Deadline-Ms", "1542409706888"),
        ], body: Array("{}".utf8))
        defer { server.stop() }
        let response = try CurlHTTPClient(caBundlePath: nil).send(HTTPRequest(method: "GET", url: server.url + "/2018-06-01/runtime/invocation/next"))
        #expect(response.header("Lambda-Runtime-Aws-Request-Id") == "8476a536-e9f4-11e8-9739-2dfe598c3fcd")
        #expect(response.header("Lambda-Runtime-Deadline-Ms").flatMap { Int64($0) } == 1_542_409_706_888)
        for header in response.headers {
            #expect(!header.value.unicodeScalars.contains { $0 == "\r" || $0 == "\n" }, "\(header.name): \(header.value.debugDescription)")
        }
    }

    @Test func errorStatusIsAResponseNotATransportError() throws {
        let server = try TestServer(status: 503, reason: "Service Unavailable", headers: [("Content-Type", "text/html")],
                                    body: Array("<html>busy</html>".utf8))
        defer { server.stop() }
        let response = try CurlHTTPClient(caBundlePath: nil).send(HTTPRequest(method: "POST", url: server.url + "/",
                                                                               body: [1], timeoutMilliseconds: 5000))
        #expect(response.status == 503)
        #expect(response.bodyText == "<html>busy</html>")
    }

    @Test func interimResponseHeadersAreDropped() throws {
        let final = TestServer.response(status: 200, reason: "OK", headers: [("X-Final", "yes")], body: Array("done".utf8))
        let server = try TestServer(responder: { _ in Array("HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n".utf8) + final })
        defer { server.stop() }
        let response = try CurlHTTPClient(caBundlePath: nil).send(HTTPRequest(method: "POST", url: server.url + "/",
                                                                               body: Array("x".utf8), timeoutMilliseconds: 5000))
        #expect(response.status == 200)
        #expect(response.header("X-Final") == "yes")
        #expect(response.header("X-Interim") == nil)
        #expect(response.bodyText == "done")
    }

    @Test func twoRequestsInARowReuseOneConnection() throws {
        let server = try TestServer(status: 200, body: Array("{}".utf8))
        defer { server.stop() }
        let client = CurlHTTPClient(caBundlePath: nil)
        let first = try client.send(HTTPRequest(method: "POST", url: server.url + "/one", headers: [("X-N", "1")],
                                                body: binaryBody(2048), timeoutMilliseconds: 5000))
        let second = try client.send(HTTPRequest(method: "GET", url: server.url + "/two", timeoutMilliseconds: 5000))
        #expect(first.status == 200)
        #expect(second.status == 200)
        #expect(server.connections == 1)
        let requests = server.requests
        #expect(requests.count == 2)
        // Nothing of the first request leaks into the second.
        #expect(requests.last?.method == "GET")
        #expect(requests.last?.target == "/two")
        #expect(requests.last?.body.isEmpty == true)
        #expect(requests.last?.header("X-N") == nil)
        #expect(requests.last?.header("Content-Length") == nil)
    }

    @Test func postWithEmptyBodySendsContentLengthZero() throws {
        let server = try TestServer(status: 202)
        defer { server.stop() }
        let response = try CurlHTTPClient(caBundlePath: nil).send(HTTPRequest(method: "POST", url: server.url + "/empty",
                                                                               timeoutMilliseconds: 5000))
        #expect(response.status == 202)
        let received = try #require(server.requests.first)
        #expect(received.method == "POST")
        #expect(received.header("Content-Length") == "0")
        #expect(received.body.isEmpty)
    }

    @Test func serverThatNeverAnswersTimesOut() throws {
        let server = try TestServer(responder: { _ in nil })
        defer { server.stop() }
        let client = CurlHTTPClient(caBundlePath: nil)
        let error = try #require(caught { () throws(TransportError) in
            _ = try client.send(HTTPRequest(method: "POST", url: server.url + "/", body: Array("{}".utf8), timeoutMilliseconds: 300))
        })
        #expect(error.isTimeout)
        // The request was sent; only the answer never came.
        #expect(server.requests.count == 1)
    }

    @Test func clientStillWorksAfterATimeout() throws {
        let answered = Counter()
        let server = try TestServer(responder: { _ in
            let n = answered.next()
            return n == 1 ? nil : TestServer.response(status: 200, reason: "OK", body: Array("late".utf8))
        })
        defer { server.stop() }
        let client = CurlHTTPClient(caBundlePath: nil)
        let error = caught { () throws(TransportError) in
            _ = try client.send(HTTPRequest(method: "GET", url: server.url + "/", timeoutMilliseconds: 300))
        }
        #expect(error?.isTimeout == true)
        let response = try client.send(HTTPRequest(method: "GET", url: server.url + "/", timeoutMilliseconds: 5000))
        #expect(response.bodyText == "late")
    }

    @Test func connectionRefusedIsATransportError() throws {
        let port = closedPort()
        let client = CurlHTTPClient(caBundlePath: nil)
        let error = try #require(caught { () throws(TransportError) in
            _ = try client.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/", timeoutMilliseconds: 5000))
        })
        #expect(!error.isTimeout)
        #expect(error.code != 0)
        #expect(!error.message.isEmpty)
    }
}

@Suite struct CABundleTests {
    let amazonLinux = "/etc/pki/tls/certs/ca-bundle.crt"
    let debian = "/etc/ssl/certs/ca-certificates.crt"

    @Test func sslCertFileWins() {
        #expect(CurlHTTPClient.defaultCABundle(environment: ["SSL_CERT_FILE": "/opt/certs.pem"], fileExists: { _ in true }) == "/opt/certs.pem")
        #expect(CurlHTTPClient.defaultCABundle(environment: ["SSL_CERT_FILE": "/opt/certs.pem"], fileExists: { _ in false }) == "/opt/certs.pem")
    }

    @Test func amazonLinuxBundleBeforeDebians() {
        #expect(CurlHTTPClient.defaultCABundle(environment: [:], fileExists: { _ in true }) == amazonLinux)
        #expect(CurlHTTPClient.defaultCABundle(environment: [:], fileExists: { $0 == amazonLinux }) == amazonLinux)
    }

    @Test func debianBundleWhenAmazonLinuxsIsAbsent() {
        #expect(CurlHTTPClient.defaultCABundle(environment: [:], fileExists: { $0 == debian }) == debian)
    }

    @Test func emptySSLCertFileIsIgnored() {
        #expect(CurlHTTPClient.defaultCABundle(environment: ["SSL_CERT_FILE": ""], fileExists: { $0 == debian }) == debian)
    }

    @Test func nothingFound() {
        #expect(CurlHTTPClient.defaultCABundle(environment: [:], fileExists: { _ in false }) == nil)
    }
}

@Suite struct URLPartsTests {
    @Test func httpsWithoutPortOrPath() throws {
        let parts = try #require(URLParts("https://secretsmanager.us-east-1.amazonaws.com"))
        #expect(parts.scheme == "https")
        #expect(parts.host == "secretsmanager.us-east-1.amazonaws.com")
        #expect(parts.port == nil)
        #expect(parts.path == "/")
        #expect(parts.hostHeader == "secretsmanager.us-east-1.amazonaws.com")
    }

    @Test func httpWithPort() throws {
        let parts = try #require(URLParts("http://localhost:4566"))
        #expect(parts.scheme == "http")
        #expect(parts.host == "localhost")
        #expect(parts.port == 4566)
        #expect(parts.path == "/")
        #expect(parts.hostHeader == "localhost:4566")
    }

    @Test func pathIsKept() throws {
        let parts = try #require(URLParts("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next"))
        #expect(parts.host == "127.0.0.1")
        #expect(parts.port == 9001)
        #expect(parts.path == "/2018-06-01/runtime/invocation/next")
    }

    @Test(arguments: [
        ("https://example.com:443/", "example.com"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:80/", "example.com:80"),
        ("http://example.com:443/", "example.com:443"),
        ("https://example.com:8443/", "example.com:8443"),
        ("HTTPS://example.com:443/", "example.com"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[::1]/", "[::1]"),
        ("http://[::1]:80/", "[::1]"),
    ])
    func hostHeaderDropsOnlyTheDefaultPort(_ url: String, _ host: String) throws {
        #expect(try #require(URLParts(url)).hostHeader == host)
    }

    @Test func ipv6Host() throws {
        let parts = try #require(URLParts("http://[::1]:8080/p"))
        #expect(parts.host == "[::1]")
        #expect(parts.port == 8080)
        #expect(parts.path == "/p")
        let noPort = try #require(URLParts("http://[fe80::1]/"))
        #expect(noPort.host == "[fe80::1]")
        #expect(noPort.port == nil)
    }

    @Test func schemeIsLowercased() throws {
        #expect(try #require(URLParts("HTTP://h")).scheme == "http")
    }

    @Test(arguments: ["localhost:4566", "ftp://example.com/", "http://", "http:///path", "http://host:notaport/",
                      "http://host:0/", "http://host:65536/", "http://host:/", "//host/", ""])
    func invalidURLs(_ url: String) {
        #expect(URLParts(url) == nil)
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}
