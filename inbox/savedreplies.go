package inbox

import (
	"context"
	"errors"
	"strings"

	"gorm.io/gorm"
)

// Saved replies (issue 13, item 6): texts the team reuses, inserted in the
// composer by typing "/" and a shortcut. They belong to the team, not to
// an agent: admins write them (web checks the role), every agent reads
// them. They are not part of any conversation, so they make no event.

// SavedReplyInput is a saved reply to create, or a change to one (nil
// fields stay as they are; for a new one all are required).
type SavedReplyInput struct {
	Shortcut, Title, Text *string
}

// Bounds of a saved reply's fields.
const (
	MaxShortcutLength   = 32
	MaxSavedReplyTitle  = 100
	savedReplyShortcuts = "a-z, 0-9, _ and -"
)

// SavedReplies returns every saved reply, by shortcut.
func (s *Store) SavedReplies(ctx context.Context) ([]SavedReply, error) {
	list := []SavedReply{}
	if err := s.rdb.WithContext(ctx).Order("shortcut").Find(&list).Error; err != nil {
		return nil, dbErr(err)
	}
	for i := range list {
		utcSavedReply(&list[i])
	}
	return list, nil
}

// CreateSavedReply stores a new saved reply. Every field is required and
// checked (cleanSavedReply); a shortcut in use is a *ConflictError naming
// "shortcut".
func (s *Store) CreateSavedReply(ctx context.Context, in SavedReplyInput) (SavedReply, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"shortcut", in.Shortcut}, {"title", in.Title}, {"text", in.Text}} {
		if f.v == nil {
			return SavedReply{}, invalid(f.name, "is required")
		}
	}
	var r SavedReply
	if err := s.cleanSavedReply(&r, in); err != nil {
		return SavedReply{}, err
	}
	r.CreatedAt = s.now()
	r.UpdatedAt = r.CreatedAt
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return SavedReply{}, savedReplyErr(err)
	}
	return r, nil
}

// UpdateSavedReply changes the given fields of a saved reply (checked as
// CreateSavedReply's) and returns it; ErrNotFound if there is none.
func (s *Store) UpdateSavedReply(ctx context.Context, id int64, in SavedReplyInput) (SavedReply, error) {
	var r SavedReply
	err := s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var err error
		if r, err = lockRow[SavedReply](tx, id); err != nil {
			return err
		}
		if err := s.cleanSavedReply(&r, in); err != nil {
			return err
		}
		r.UpdatedAt = s.now()
		return tx.Model(&SavedReply{}).Where("id = ?", id).Updates(map[string]any{
			"shortcut": r.Shortcut, "title": r.Title, "text": r.Text, "updated_at": r.UpdatedAt}).Error
	})
	if err != nil {
		return SavedReply{}, savedReplyErr(err)
	}
	utcSavedReply(&r)
	return r, nil
}

// DeleteSavedReply deletes a saved reply; ErrNotFound if there is none.
func (s *Store) DeleteSavedReply(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Delete(&SavedReply{}, id)
	if res.Error != nil {
		return dbErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// cleanSavedReply checks the fields in gives and sets them on r: the
// shortcut trimmed and in lower case, 1 to MaxShortcutLength of a-z, 0-9,
// _ and -; the title a single line of user text (SingleLine) of 1 to
// MaxSavedReplyTitle bytes; the text multi-line user text (MultiLine),
// trimmed, of 1 byte to the store's MaxMessageBytes, so that it can be
// sent as it is. A wrong field is an *InvalidError naming it.
func (s *Store) cleanSavedReply(r *SavedReply, in SavedReplyInput) error {
	if in.Shortcut != nil {
		v, err := SingleLine("shortcut", *in.Shortcut)
		if err != nil {
			return err
		}
		v = strings.ToLower(v)
		if v == "" || len(v) > MaxShortcutLength || strings.ContainsFunc(v, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-')
		}) {
			return invalid("shortcut", "must be 1 to %d of %s", MaxShortcutLength, savedReplyShortcuts)
		}
		r.Shortcut = v
	}
	if in.Title != nil {
		v, err := SingleLine("title", *in.Title)
		if err != nil {
			return err
		}
		if v == "" || len(v) > MaxSavedReplyTitle {
			return invalid("title", "must be 1 to %d bytes of visible text", MaxSavedReplyTitle)
		}
		r.Title = v
	}
	if in.Text != nil {
		v, err := MultiLine("text", *in.Text)
		if err != nil {
			return err
		}
		v = strings.TrimSpace(v)
		if v == "" || len(v) > s.opts.MaxMessageBytes {
			return invalid("text", "must be 1 to %d bytes", s.opts.MaxMessageBytes)
		}
		r.Text = v
	}
	return nil
}

// savedReplyErr turns a unique violation of the shortcut into a
// *ConflictError naming it.
func savedReplyErr(err error) error {
	if isDuplicate(err) {
		return &ConflictError{Field: "shortcut", Reason: "another saved reply has this shortcut"}
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return dbErr(err)
}

func utcSavedReply(r *SavedReply) {
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
}
