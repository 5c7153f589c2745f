package inbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// The server secret keys the HMAC of every token Microchat puts in mail
// (rule 9: conversation tokens in addresses and subjects; rating links;
// our Message-IDs), so that a token cannot be guessed or altered. It is
// made on first use and kept in the database (server_secrets), so every
// node of one database signs alike and a restart keeps old mail working.

const secretTokens = "tokens"

// tokenSigLen is how many base32 characters of the HMAC a token carries:
// 16 characters, 80 bits.
const tokenSigLen = 16

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// secret returns the server secret, creating it on first use; it is read
// from the database once per Store.
func (s *Store) secret(ctx context.Context) ([]byte, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if s.secretKey != nil {
		return s.secretKey, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Two nodes starting at once both insert; one wins, both read it.
	row := serverSecretRow{Name: secretTokens, Value: key, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, dbErr(err)
	}
	var got serverSecretRow
	if err := s.db.WithContext(ctx).Where("name = ?", secretTokens).Take(&got).Error; err != nil {
		return nil, dbErr(err)
	}
	s.secretKey = got.Value
	return s.secretKey, nil
}

type serverSecretRow struct {
	Name      string `gorm:"primaryKey"`
	Value     []byte
	CreatedAt time.Time
}

func (serverSecretRow) TableName() string { return "server_secrets" }

// Sign returns the signature of a token: the first tokenSigLen base32
// characters (lower case) of HMAC-SHA256 under the server secret of
// purpose and the parts, joined so that no two inputs collide.
func (s *Store) Sign(ctx context.Context, purpose string, parts ...string) (string, error) {
	key, err := s.secret(ctx)
	if err != nil {
		return "", err
	}
	return signWith(key, purpose, parts...), nil
}

func signWith(key []byte, purpose string, parts ...string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose))
	for _, p := range parts {
		mac.Write([]byte{0})
		mac.Write([]byte(strconv.Itoa(len(p))))
		mac.Write([]byte{':'})
		mac.Write([]byte(p))
	}
	return tokenEncoding.EncodeToString(mac.Sum(nil))[:tokenSigLen]
}

// Verify reports whether sig is the signature of purpose and parts, in
// constant time.
func (s *Store) Verify(ctx context.Context, sig, purpose string, parts ...string) (bool, error) {
	want, err := s.Sign(ctx, purpose, parts...)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)), nil
}

// ConversationToken returns the signed token of a conversation for email
// threading (rule 9): "c" + id + "-" + signature, e.g. "c42-k3j...". It
// goes in the plus part of an address (support+c42-...@example.com) and in
// subjects ("[#c42-...]").
func (s *Store) ConversationToken(ctx context.Context, conversationID int64) (string, error) {
	id := strconv.FormatInt(conversationID, 10)
	sig, err := s.Sign(ctx, "conversation", id)
	if err != nil {
		return "", err
	}
	return "c" + id + "-" + sig, nil
}

// ParseConversationToken returns the conversation of a token made by
// ConversationToken, and false for anything else: a malformed token or a
// wrong signature.
func (s *Store) ParseConversationToken(ctx context.Context, token string) (int64, bool, error) {
	token = strings.ToLower(token)
	rest, ok := strings.CutPrefix(token, "c")
	if !ok {
		return 0, false, nil
	}
	idStr, sig, ok := strings.Cut(rest, "-")
	if !ok || len(sig) != tokenSigLen {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != idStr {
		return 0, false, nil
	}
	good, err := s.Verify(ctx, sig, "conversation", idStr)
	if err != nil || !good {
		return 0, false, err
	}
	return id, true, nil
}
