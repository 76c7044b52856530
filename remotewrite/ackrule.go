package remotewrite

import (
	"errors"
	"fmt"
)

// ReasonContentTypeMismatch is the rejection reason of a body that is the
// other remote-write message than the one its Content-Type names.
const ReasonContentTypeMismatch = "content_type_mismatch"

// The two messages as error messages name them.
const (
	messageRW1 = "remote write 1.0 (" + protoRW1 + ")"
	messageRW2 = "remote write 2.0 (" + protoRW2 + ")"
)

// carriesNothing reports whether a decoded request holds neither series nor
// metadata. Each message keeps its data in fields the other does not have
// (RW1: 1 timeseries, 3 metadata; RW2: 4 symbols, 5 timeseries), so a body
// sent under the other message's Content-Type decodes to such a request,
// and answering it 2xx would drop every sample without a word.
func carriesNothing(req *Request) bool {
	return len(req.Series) == 0 && len(req.Metadata) == 0
}

// nothingDecoded is the 400 for a non-empty body (uncompressed) that
// carries nothing as the message its Content-Type declares (rw2): it names
// the other message when the body is one, and says what the body holds
// otherwise. It runs only for such bodies and may use bufs' scratch.
func nothingDecoded(body []byte, rw2 bool, bufs *receiveBuffers) error {
	symbols, series, isRW2 := bufs.rw2.shape(body)
	switch {
	case !rw2 && isRW2 && series > 0:
		return contentTypeMismatch(messageRW2, messageRW1, ContentTypeRW2)
	case rw2 && isRW1WithData(body, &bufs.req):
		return contentTypeMismatch(messageRW1, messageRW2, ContentTypeRW1)
	}
	declared, holds := messageRW1, "it holds only fields that message does not define"
	if rw2 {
		declared = messageRW2
		if symbols > 0 {
			holds = fmt.Sprintf("it holds a symbols table of %d symbols and no timeseries", symbols)
		}
	}
	return &DecodeError{Reason: ReasonBadProtobuf, Msg: fmt.Sprintf(
		"body of %d bytes (uncompressed) decodes to no series and no metadata as %s: %s", len(body), declared, holds)}
}

func contentTypeMismatch(is, declared, contentType string) error {
	return &DecodeError{Reason: ReasonContentTypeMismatch, Msg: fmt.Sprintf(
		"body is %s but Content-Type says %s; set Content-Type: %s", is, declared, contentType)}
}

// isRW1WithData reports whether body is a well-formed RW1 request (its
// series need not be valid) with at least one series or metadata entry.
// req is scratch.
func isRW1WithData(body []byte, req *Request) bool {
	err := DecodeWriteRequest(body, req)
	var de *DecodeError
	if errors.As(err, &de) && de.Reason == ReasonBadProtobuf {
		return false
	}
	return !carriesNothing(req)
}
