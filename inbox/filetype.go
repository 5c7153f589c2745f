package inbox

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// Attachments come from strangers, so their type is decided from their
// content, never from the name or the Content-Type the client sent.
// gabriel-vasile/mimetype recognises the formats; which of them are
// accepted is our own list below. What phones and desktops produce today
// is accepted: photos (JPEG, PNG, GIF, WebP, HEIC/HEIF, AVIF, JPEG XL,
// TIFF, BMP, ICO, SVG), PDF, text of any kind (UTF-8, or UTF-16 with a
// byte order mark; CSV, HTML), Office and OpenDocument files (OOXML and
// ODF zips, legacy OLE files), archives (ZIP, gzip, tar, 7z, RAR), audio (MP3,
// AAC, M4A, Ogg Vorbis/Opus, FLAC, WAV, AIFF, AMR) and video (MP4, MOV,
// 3GP, WebM, Matroska, AVI, MPEG, Ogg). Refused: programs of any platform
// (they run when opened), and every type that is neither recognised nor
// on the list.

// RefusedTypeError says that a file's content is of a type that is not
// accepted as an attachment, and why. The web layer answers it with 415.
type RefusedTypeError struct {
	// Type is the detected MIME type without parameters,
	// "application/octet-stream" when the content was not recognised.
	Type string
	// Reason says why the type is refused, for the user.
	Reason string
}

func (e *RefusedTypeError) Error() string { return e.Type + ": " + e.Reason }

// AcceptedTypes says, for users, which files are accepted (the message of
// a refusal ends with it).
const AcceptedTypes = "send images (including HEIC and AVIF photos), PDF, text, Office or OpenDocument files, ZIP, gzip, tar, 7z or RAR archives, audio or video"

// acceptedTypes are the MIME types (as mimetype names them) that are
// accepted, besides every text type (see DetectFileType). A type that
// mimetype refines further (a zip into an OOXML document, video/mp4
// into its ISO-BMFF brands) is accepted if it or one of its parents is
// here, unless programTypes names it first.
var acceptedTypes = map[string]bool{
	// Images.
	"image/jpeg": true, "image/png": true, "image/apng": true, "image/gif": true, "image/webp": true,
	"image/heic": true, "image/heic-sequence": true, "image/heif": true, "image/heif-sequence": true,
	"image/avif": true, "image/jxl": true, "image/tiff": true, "image/bmp": true, "image/x-icon": true,
	"image/svg+xml": true, "image/jp2": true, "image/vnd.adobe.photoshop": true,
	// Documents and archives; zip covers OOXML, ODF and EPUB, OLE the
	// legacy Office files.
	"application/pdf": true, "application/zip": true, "application/x-ole-storage": true,
	"application/gzip": true, "application/x-7z-compressed": true,
	"application/vnd.rar": true, "application/x-tar": true,
	// Audio and video; video/mp4 is every ISO-BMFF file (the ftyp box)
	// whose brand mimetype does not name more precisely.
	"audio/mpeg": true, "audio/aac": true, "audio/mp4": true, "audio/x-m4a": true, "audio/ogg": true,
	"audio/flac": true, "audio/wav": true, "audio/aiff": true, "audio/amr": true, "audio/midi": true,
	"application/ogg": true, "video/mp4": true, "video/quicktime": true, "video/x-m4v": true,
	"video/3gpp": true, "video/3gpp2": true, "video/webm": true, "video/matroska": true,
	"video/x-msvideo": true, "video/mpeg": true, "video/ogg": true,
}

// programTypes are refused because they run when opened: executables
// and libraries of every platform, installers and packages, and the
// formats of runtimes (Java, Android, browser extensions, WebAssembly,
// Flash, Python bytecode, Windows shortcuts and help files).
var programTypes = map[string]bool{
	"application/vnd.microsoft.portable-executable": true, "application/x-elf": true,
	"application/x-executable": true, "application/x-sharedlib": true, "application/x-object": true,
	"application/x-coredump": true, "application/x-mach-binary": true,
	"application/x-ms-installer": true, "application/x-installshield": true,
	"application/vnd.ms-cab-compressed": true, "application/vnd.debian.binary-package": true,
	"application/x-rpm": true, "application/java-archive": true, "application/x-java-applet": true,
	"application/vnd.android.package-archive": true, "application/x-chrome-extension": true,
	"application/wasm": true, "application/x-shockwave-flash": true,
	"application/x-bytecode.python": true, "application/x-ms-shortcut": true,
	"application/vnd.ms-htmlhelp": true,
}

// DetectFileType returns the MIME type of a file from its content, with
// its parameters (text has a charset), or a *RefusedTypeError if the
// type is not accepted as an attachment (see acceptedTypes and
// programTypes). Only the first few KiB are read.
func DetectFileType(data []byte) (string, error) {
	m := mimetype.Detect(data)
	ct := m.String()
	if brand := heifBrand(data); brand != "" {
		ct = brand
	}
	for t := m; t != nil; t = t.Parent() {
		base, _, _ := strings.Cut(t.String(), ";")
		switch {
		case programTypes[base]:
			return "", &RefusedTypeError{Type: mimeBase(ct), Reason: "programs are not accepted"}
		case acceptedTypes[base], base == "text/plain":
			// Every text type descends from text/plain: it is read,
			// and always served as a download.
			return ct, nil
		}
	}
	if base := mimeBase(ct); base != "application/octet-stream" {
		return "", &RefusedTypeError{Type: base, Reason: "this type of file is not accepted"}
	}
	return "", &RefusedTypeError{Type: "application/octet-stream", Reason: "the type of this file could not be recognised from its content"}
}

func mimeBase(ct string) string {
	base, _, _ := strings.Cut(ct, ";")
	return base
}

// heifBrand names the image type of an ISO-BMFF file (ISO/IEC 14496-12
// section 4.3, the ftyp box) whose major brand is a generic one
// (mif1/msf1 of HEIF, iso*, mp4*) but whose compatible brands say AVIF or
// HEIC, as some encoders write them; "" otherwise. mimetype decides by
// the major brand only.
func heifBrand(data []byte) string {
	if len(data) < 16 || !bytes.Equal(data[4:8], []byte("ftyp")) {
		return ""
	}
	size := int(binary.BigEndian.Uint32(data[:4]))
	if size < 16 || size > len(data) || size > 4096 {
		return ""
	}
	switch major := string(data[8:12]); {
	case major == "mif1", major == "msf1", strings.HasPrefix(major, "iso"), strings.HasPrefix(major, "mp4"):
	default:
		return ""
	}
	// After the major brand comes the minor version, then the compatible
	// brands, four bytes each.
	var heic bool
	for i := 16; i+4 <= size; i += 4 {
		switch string(data[i : i+4]) {
		case "avif", "avis":
			return "image/avif"
		case "heic", "heix":
			heic = true
		}
	}
	if heic {
		return "image/heic"
	}
	return ""
}
