// pytest-tlsenv's Java client: one GET with java.net.http.HttpClient.
//
// Every exception is caught and printed as its class and message, then each cause in turn
// ("caused by: ..."), and the exit status is 1: the JDK's real reason (a PKIX path error,
// "trustAnchors parameter must be non-empty") often sits deep in the chain, under a vague
// surface message. An uncaught stack trace therefore means the JVM itself broke (an Error,
// or a crash before main), which the plugin reports as CRASHED.
//
// Trust comes from the javax.net.ssl.trustStore* properties (JAVA_TOOL_OPTIONS or the
// command line) or the JDK's default cacerts. The proxy comes from https.proxyHost/Port only:
// Java never reads HTTPS_PROXY.

import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public final class TlsenvGet {
    private TlsenvGet() {}

    public static void main(String[] args) {
        int status;
        try {
            HttpClient.Builder builder = HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(10));
            if (System.getProperty("https.proxyHost") != null) {
                // The default selector reads https.proxyHost/Port (and http.nonProxyHosts).
                builder.proxy(ProxySelector.getDefault());
            }
            HttpRequest request = HttpRequest.newBuilder(URI.create(args[0]))
                    .timeout(Duration.ofSeconds(10))
                    .GET()
                    .build();
            HttpResponse<byte[]> response =
                    builder.build().send(request, HttpResponse.BodyHandlers.ofByteArray());
            System.out.write(response.body());
            System.out.flush();
            status = response.statusCode() < 400 ? 0 : 22;
            if (status != 0) {
                System.err.println("HTTP status " + response.statusCode());
            }
        } catch (Exception e) {
            Throwable t = e;
            String prefix = "";
            for (int depth = 0; t != null && depth < 20; depth++) {
                System.err.println(prefix + t.getClass().getName() + ": " + t.getMessage());
                prefix = "caused by: ";
                t = t.getCause() == t ? null : t.getCause();
            }
            status = 1;
        }
        System.exit(status);
    }
}
