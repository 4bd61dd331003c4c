-- Projects group tasks and belong to one user. Unlike usernames, a project
-- name identifies nothing security-relevant, so it is unique per owner only
-- among live projects: a soft-deleted project frees its name (a partial
-- unique index, WHERE deleted_at IS NULL).
-- depends: 0005.create-audit-log

CREATE TABLE app.projects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    is_public boolean NOT NULL DEFAULT FALSE,
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_projects PRIMARY KEY (id),
    CONSTRAINT fk_projects_owner_id_users FOREIGN KEY (owner_id)
    REFERENCES app.users (id),
    CONSTRAINT check_projects_name_length
    CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    CONSTRAINT check_projects_description_length CHECK (length(description) <= 10000),
    CONSTRAINT check_projects_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_projects_version_positive CHECK (version >= 1),
    CONSTRAINT check_projects_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

-- Live projects only: a soft-deleted project's name can be used again.
CREATE UNIQUE INDEX unique_projects_owner_id_and_name
ON app.projects (owner_id, name)
WHERE deleted_at IS NULL;

-- Serves the foreign key (it must see deleted rows too) and listing by owner.
CREATE INDEX index_projects_on_owner_id ON app.projects (owner_id);

CREATE TRIGGER trigger_projects_stamp_row
BEFORE INSERT OR UPDATE ON app.projects
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.projects IS
'Containers of tasks, owned by a user. Name unique per owner among live rows.';
COMMENT ON COLUMN app.projects.is_public IS 'Visible to every user, not just the owner.';
COMMENT ON COLUMN app.projects.archived_at IS 'Read-only from then on; still listed.';
