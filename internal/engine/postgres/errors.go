package postgres

import (
	"github.com/countersign/countersign/internal/guard"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes the gateway itself sends.
const (
	codeProtocolViolation    = "08P01"
	codeConnectionFailure    = "08006"
	codeFeatureNotSupported  = "0A000"
	codeInvalidAuthorization = "28000"
	codeInvalidPassword      = "28P01"
	codeInvalidCatalogName   = "3D000"
	codeInsufficientPriv     = "42501"
	codeQueryCanceled        = "57014"
	codeSystemError          = "58000"
	codeAdminShutdown        = "57P01"
	codeIdleTimeout          = "57P05"
	codeInternalError        = "XX000"
)

// Verdict codes the engine sets itself.
const (
	verdictCanceled        = "query_canceled"
	verdictRecordingFailed = "recording_failed"
	verdictClientGone      = "client_gone"
	verdictUnsupported     = "unsupported"
)

func fatal(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}
}

func errorMsg(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg}
}

// refusalError turns a refusing verdict into the ErrorResponse the client sees.
func refusalError(v guard.Verdict) *pgproto3.ErrorResponse {
	code := codeInsufficientPriv
	switch v.Code {
	case verdictCanceled:
		code = codeQueryCanceled
	case verdictRecordingFailed:
		code = codeSystemError
	case verdictUnsupported:
		code = codeFeatureNotSupported
	}
	msg := v.Message
	if msg == "" {
		msg = "countersign refused this operation (" + v.Code + ")"
	}
	e := errorMsg(code, msg)
	if v.ReviewID != "" {
		e.Detail = "review " + v.ReviewID
	}
	return e
}
