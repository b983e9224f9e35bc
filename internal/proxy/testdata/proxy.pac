// Proxy auto-configuration for Warden, the school's web filter
// (served as /proxy.pac and /wpad.dat).
//
// Plain names, loopback, the school's own networks and Warden itself
// are reached directly; everything else goes through Warden's proxy.
// There is deliberately no "DIRECT" fallback after the proxy: a filter
// must not fail open, so if the proxy cannot be reached, browsing stops
// rather than going on unfiltered.
function FindProxyForURL(url, host) {
	// Plain host names (no dots) are on the local network.
	if (isPlainHostName(host))
		return "DIRECT";
	if (host == "localhost" || host == "::1" || host == "[::1]")
		return "DIRECT";
	// Warden's own names.
	if (host == "warden.school.example")
		return "DIRECT";
	if (host == "warden.school.example" || dnsDomainIs(host, ".warden.school.example"))
		return "DIRECT";
	// Resolve once: isInNet would resolve the name again for every
	// network. A name that does not resolve goes to the proxy.
	var ip = dnsResolve(host);
	if (ip) {
		// Loopback.
		if (isInNet(ip, "127.0.0.0", "255.0.0.0"))
			return "DIRECT";
		// The school's networks.
		if (isInNet(ip, "10.20.0.0", "255.255.0.0"))
			return "DIRECT";
		if (isInNet(ip, "192.168.1.0", "255.255.255.0"))
			return "DIRECT";
	}
	return "PROXY warden.school.example:3128";
}
