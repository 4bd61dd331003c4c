-- Role-based access control: named roles hold named permissions, users hold
-- roles. Role and permission names are identifiers that code and configuration
-- refer to, so they stay unique after a soft delete, like usernames. Link rows
-- (role_permissions, user_roles) are never updated: a grant is inserted, a
-- revocation deletes it, and both are recorded in audit_log.
-- depends: 0002.create-users

CREATE TABLE app.roles (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_roles PRIMARY KEY (id),
    CONSTRAINT unique_roles_name UNIQUE (name),
    CONSTRAINT check_roles_name_shape CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    CONSTRAINT check_roles_description_length CHECK (length(description) <= 10000),
    CONSTRAINT check_roles_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_roles_version_positive CHECK (version >= 1),
    CONSTRAINT check_roles_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

CREATE TRIGGER trigger_roles_stamp_row
BEFORE INSERT OR UPDATE ON app.roles
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.roles IS 'Named sets of permissions, e.g. admin, project-editor.';
COMMENT ON COLUMN app.roles.name IS
'Lower-case identifier, unique forever (also after soft delete).';

CREATE TABLE app.permissions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_permissions PRIMARY KEY (id),
    CONSTRAINT unique_permissions_name UNIQUE (name),
    CONSTRAINT check_permissions_name_shape CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    CONSTRAINT check_permissions_description_length CHECK (length(description) <= 10000),
    CONSTRAINT check_permissions_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_permissions_version_positive CHECK (version >= 1),
    CONSTRAINT check_permissions_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

CREATE TRIGGER trigger_permissions_stamp_row
BEFORE INSERT OR UPDATE ON app.permissions
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.permissions IS 'Named capabilities checked by code, e.g. projects:write.';

CREATE TABLE app.role_permissions (
    role_id uuid NOT NULL,
    permission_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CONSTRAINT pk_role_permissions PRIMARY KEY (role_id, permission_id),
    CONSTRAINT fk_role_permissions_role_id_roles FOREIGN KEY (role_id)
    REFERENCES app.roles (id) ON DELETE CASCADE,
    CONSTRAINT fk_role_permissions_permission_id_permissions FOREIGN KEY (permission_id)
    REFERENCES app.permissions (id) ON DELETE CASCADE,
    CONSTRAINT check_role_permissions_created_by_length
    CHECK (length(created_by) BETWEEN 1 AND 200)
);

-- The primary key serves look-ups by role; this one serves the foreign key
-- on permission_id (deleting a permission) and "which roles grant X".
CREATE INDEX index_role_permissions_on_permission_id
ON app.role_permissions (permission_id);

COMMENT ON TABLE app.role_permissions IS
'Which permissions a role grants. Insert to grant, delete to revoke; never updated.';

CREATE TABLE app.user_roles (
    user_id uuid NOT NULL,
    role_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CONSTRAINT pk_user_roles PRIMARY KEY (user_id, role_id),
    CONSTRAINT fk_user_roles_user_id_users FOREIGN KEY (user_id)
    REFERENCES app.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_user_roles_role_id_roles FOREIGN KEY (role_id)
    REFERENCES app.roles (id) ON DELETE CASCADE,
    CONSTRAINT check_user_roles_created_by_length
    CHECK (length(created_by) BETWEEN 1 AND 200)
);

CREATE INDEX index_user_roles_on_role_id ON app.user_roles (role_id);

COMMENT ON TABLE app.user_roles IS
'Which roles a user holds. Insert to grant, delete to revoke; never updated.';
