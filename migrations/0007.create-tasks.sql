-- Tasks are the work items inside a project. Their status is a fixed set
-- checked by the database, so no writer can invent a state the code does not
-- know; priority is a small bounded integer (0 lowest, 4 highest).
-- depends: 0006.create-projects

CREATE TABLE app.tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'todo',
    priority integer NOT NULL DEFAULT 2,
    assignee_id uuid,
    due_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_tasks PRIMARY KEY (id),
    CONSTRAINT fk_tasks_project_id_projects FOREIGN KEY (project_id)
    REFERENCES app.projects (id),
    CONSTRAINT fk_tasks_assignee_id_users FOREIGN KEY (assignee_id)
    REFERENCES app.users (id) ON DELETE SET NULL,
    CONSTRAINT check_tasks_title_length
    CHECK (length(title) BETWEEN 1 AND 500 AND title !~ '[[:cntrl:]]'),
    CONSTRAINT check_tasks_description_length CHECK (length(description) <= 10000),
    CONSTRAINT check_tasks_status
    CHECK (status IN ('todo', 'in_progress', 'blocked', 'done', 'cancelled')),
    CONSTRAINT check_tasks_priority_range CHECK (priority BETWEEN 0 AND 4),
    CONSTRAINT check_tasks_completed_at_only_when_done
    CHECK (completed_at IS NULL OR status = 'done'),
    CONSTRAINT check_tasks_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_tasks_version_positive CHECK (version >= 1),
    CONSTRAINT check_tasks_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

-- A project's board: its tasks by status (also serves the project_id key).
CREATE INDEX index_tasks_on_project_id_and_status ON app.tasks (project_id, status);

-- Someone's work: tasks by assignee and status (also serves assignee_id key).
CREATE INDEX index_tasks_on_assignee_id_and_status ON app.tasks (assignee_id, status);

-- What is due soon: open, live tasks only.
CREATE INDEX index_tasks_on_due_at
ON app.tasks (due_at)
WHERE deleted_at IS NULL AND status NOT IN ('done', 'cancelled');

CREATE TRIGGER trigger_tasks_stamp_row
BEFORE INSERT OR UPDATE ON app.tasks
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.tasks IS 'Work items of a project.';
COMMENT ON COLUMN app.tasks.status IS
'One of todo, in_progress, blocked, done, cancelled (check_tasks_status).';
COMMENT ON COLUMN app.tasks.priority IS '0 (lowest) to 4 (highest); default 2.';
COMMENT ON COLUMN app.tasks.completed_at IS 'Set only while status is done.';
