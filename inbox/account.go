package inbox

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// An agent's account as the dashboard changes it (issue 13): their own
// name, settings and password (PATCH /agents/me, POST /auth/password),
// and, for admins, anyone's name, role and whether they may log in
// (PATCH /agents/{id}). Two rules hold whatever the change:
//
//   - There is always an enabled admin: disabling or demoting the last
//     one is ErrConflict. The transactions that could break it lock every
//     enabled admin's row, in ascending id order, before they count, so
//     that two admins demoting each other at once cannot both succeed.
//   - Credentials end at once: disabling an agent deletes their sessions
//     and a password change the agent's other sessions, in the same
//     transaction, and after the commit a Revoked notice closes their
//     sockets with 4401.

// AgentChange is a change to an agent; nil fields stay as they are.
type AgentChange struct {
	// Name is the display name (checkAgentName).
	Name *string
	// Role is RoleAdmin or RoleAgent.
	Role *string
	// Disabled true disables the account (see disableAgent), false
	// enables it again: the agent can log in with their password.
	Disabled *bool
	// Notifications is NotifyAll, NotifyMine or NotifyOff; Sound turns
	// the notification sound on or off (AgentSettings).
	Notifications *string
	Sound         *bool
}

// UpdateAgent applies a change to an agent in one transaction and returns
// the agent as it is then. A wrong value is an *InvalidError naming its
// field ("name", "role", "settings.notifications"); an unknown agent
// ErrNotFound; disabling or demoting the last enabled admin a
// *ConflictError naming "disabled" or "role". A new name is announced
// as RenameAgent says; nothing else of a change makes an event.
func (s *Store) UpdateAgent(ctx context.Context, id int64, ch AgentChange) (Agent, error) {
	return s.updateAgent(ctx, id, ch, false)
}

// updateAgent is UpdateAgent; onlyEnabled makes a disabled agent
// ErrNotFound (RemoveAgent).
func (s *Store) updateAgent(ctx context.Context, id int64, ch AgentChange, onlyEnabled bool) (Agent, error) {
	var err error
	var name string
	if ch.Name != nil {
		if name, err = checkAgentName(*ch.Name); err != nil {
			return Agent{}, err
		}
	}
	if ch.Role != nil && *ch.Role != RoleAdmin && *ch.Role != RoleAgent {
		return Agent{}, invalid("role", "must be admin or agent")
	}
	if ch.Notifications != nil {
		switch *ch.Notifications {
		case NotifyAll, NotifyMine, NotifyOff:
		default:
			return Agent{}, invalid("settings.notifications", "must be all, mine or off")
		}
	}
	var a Agent
	disabled := false
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		disabled = false
		var admins []int64
		if ch.Role != nil || ch.Disabled != nil {
			var err error
			if admins, err = lockAdmins(tx, id); err != nil {
				return err
			}
		}
		var err error
		if a, err = lockRow[Agent](tx, id); err != nil {
			return err
		}
		if onlyEnabled && a.Disabled() {
			return ErrNotFound
		}
		wasEnabledAdmin := a.IsAdmin() && !a.Disabled()
		updates := map[string]any{}
		renamed := ch.Name != nil && name != a.Name
		if renamed {
			a.Name, updates["name"] = name, name
		}
		if ch.Role != nil && *ch.Role != a.Role {
			a.Role, updates["role"] = *ch.Role, *ch.Role
		}
		if ch.Notifications != nil && *ch.Notifications != a.Settings.Notifications {
			a.Settings.Notifications, updates["notifications"] = *ch.Notifications, *ch.Notifications
		}
		if ch.Sound != nil && *ch.Sound != a.Settings.Sound {
			a.Settings.Sound, updates["sound"] = *ch.Sound, *ch.Sound
		}
		disable := ch.Disabled != nil && *ch.Disabled && !a.Disabled()
		if ch.Disabled != nil && !*ch.Disabled && a.Disabled() {
			a.DeactivatedAt, updates["deactivated_at"] = nil, nil
		}
		if wasEnabledAdmin && (disable || a.Role != RoleAdmin) && len(admins) == 0 {
			field, what := "role", "demoted"
			if disable {
				field, what = "disabled", "disabled"
			}
			return &ConflictError{Field: field, Reason: fmt.Sprintf("the last enabled admin cannot be %s", what)}
		}
		if len(updates) > 0 {
			if err := tx.Model(&Agent{}).Where("id = ?", id).Updates(updates).Error; err != nil {
				return err
			}
		}
		if renamed {
			if err := s.announceName(tx, a, evs); err != nil {
				return err
			}
		}
		if disable {
			disabled = true
			return s.disableAgent(tx, &a, evs)
		}
		if len(updates) == 0 {
			return errNoop
		}
		return nil
	})
	if err != nil {
		return Agent{}, err
	}
	if disabled {
		s.pub.Revoke(Revoked{AgentID: id})
	}
	utcAgent(&a)
	return a, nil
}

// lockAdmins locks the rows of every enabled admin and of the agent id,
// in ascending id order (on PostgreSQL; SQLite's writer holds the whole
// database), and returns the enabled admins other than id. A transaction
// that waited for another's lock reads what that one committed: the rows
// that are no longer enabled admins are not returned.
func lockAdmins(tx *gorm.DB, id int64) ([]int64, error) {
	q := `SELECT id FROM agents WHERE (role = ? AND deactivated_at IS NULL) OR id = ? ORDER BY id`
	if tx.Dialector.Name() == "postgres" {
		q += ` FOR UPDATE`
	}
	var ids []int64
	if err := tx.Raw(q, RoleAdmin, id).Scan(&ids).Error; err != nil {
		return nil, err
	}
	// The agent's own row was locked for what follows; whether it is an
	// admin is read then.
	others := ids[:0]
	for _, x := range ids {
		if x != id {
			others = append(others, x)
		}
	}
	return others, nil
}

// disableAgent disables the agent a, locked, in tx: they can no longer
// log in, their presence is offline, their sessions are deleted, their
// API tokens revoked (revokeAgentTokens) and they leave every
// conversation they are in (rule 3: the last one to leave closes it).
// The caller publishes Revoked{AgentID} after the commit, which closes
// their sockets. The row stays, so that their name stays on what they
// wrote, and so does their email: it cannot be reused, and the account
// can be enabled again.
func (s *Store) disableAgent(tx *gorm.DB, a *Agent, evs *[]Event) error {
	now := s.now()
	if err := tx.Model(&Agent{}).Where("id = ?", a.ID).
		Updates(map[string]any{"deactivated_at": now, "presence": PresenceOffline}).Error; err != nil {
		return err
	}
	a.DeactivatedAt, a.Presence = &now, PresenceOffline
	if err := tx.Where("agent_id = ?", a.ID).Delete(&Session{}).Error; err != nil {
		return err
	}
	if err := s.revokeAgentTokens(tx, a.ID); err != nil {
		return err
	}
	convs, err := joinedConversations(tx, a.ID)
	if err != nil {
		return err
	}
	for _, id := range convs {
		if _, err := lockConversation(tx, id); err != nil {
			return err
		}
		if err := s.leave(tx, id, *a, evs); err != nil {
			return err
		}
	}
	return nil
}

// utcAgent gives the agent's times in UTC, as every answer has them.
func utcAgent(a *Agent) {
	a.CreatedAt = a.CreatedAt.UTC()
	if a.DeactivatedAt != nil {
		t := a.DeactivatedAt.UTC()
		a.DeactivatedAt = &t
	}
}

// ChangePassword sets the agent's password to next once current is
// proved to be theirs, and ends the agent's other sessions: every one
// but keepSession (a Session.ID, the session the change was made from),
// deleted in the same transaction, their sockets closed after the commit
// (a Revoked notice for each). A wrong current password is a
// *ForbiddenError naming "current_password"; a new one that is too short
// or too long an *InvalidError naming "new_password" (hashPassword); an
// unknown or disabled agent ErrNotFound. A concurrent change of the same
// password (the hash checked is no longer the stored one) is ErrConflict.
func (s *Store) ChangePassword(ctx context.Context, agentID int64, keepSession, current, next string) error {
	a, err := s.Agent(ctx, agentID)
	if err != nil {
		return err
	}
	if a.Disabled() {
		return ErrNotFound
	}
	if bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(current)) != nil {
		return &ForbiddenError{Field: "current_password", Reason: "is not the agent's password"}
	}
	hash, err := hashPassword("new_password", next)
	if err != nil {
		return err
	}
	var ended []string
	err = s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		ended = ended[:0]
		res := tx.Model(&Agent{}).Where("id = ? AND password_hash = ? AND deactivated_at IS NULL", agentID, a.PasswordHash).
			Update("password_hash", hash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("%w: the password changed meanwhile", ErrConflict)
		}
		return tx.Raw(`DELETE FROM sessions WHERE agent_id = ? AND id <> ? RETURNING id`, agentID, keepSession).Scan(&ended).Error
	})
	if err != nil {
		return err
	}
	for _, id := range ended {
		s.pub.Revoke(Revoked{SessionID: id})
	}
	return nil
}
