package mysql

// MySQL error numbers and SQLSTATEs the gateway answers with.
const (
	erAccessDenied      = 1045 // bad token, plaintext refused
	erSecureTransport   = 3159 // ER_SECURE_TRANSPORT_REQUIRED
	erTableAccessDenied = 1142 // the guard refused the operation
	erSpecificAccess    = 1227 // the guard refused a connect or an admin operation
	erUnknownCom        = 1047 // ER_UNKNOWN_COM_ERROR
	erNetPacketTooLarge = 1153
	erMalformedPacket   = 1835
	erUnknown           = 1105 // ER_UNKNOWN_ERROR: the gateway's own failures
	erQueryInterrupted  = 1317
	erWrongArguments    = 1210 // bad COM_STMT_EXECUTE
	erUnknownStmt       = 1243 // unknown prepared statement handler
	erBadDB             = 1049
	erDBAccessDenied    = 1044 // a schema the resource does not allow
)

// errPacket builds an ERR packet payload (protocol 4.1).
func errPacket(code uint16, state, msg string) []byte {
	b := make([]byte, 0, 9+len(msg))
	b = append(b, 0xff, byte(code), byte(code>>8), '#')
	b = append(b, state...)
	return append(b, msg...)
}

// okPacket builds an OK packet payload with no rows and no insert id.
func okPacket(status uint16) []byte {
	return []byte{0x00, 0x00, 0x00, byte(status), byte(status >> 8), 0x00, 0x00}
}
