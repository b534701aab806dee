package sqlkind

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// utilityKinds maps every other statement type the grammar has to its kind.
// A type not listed here is Unknown, so a statement added to a later grammar
// fails closed until someone decides it.
var utilityKinds = func() map[string]Kind {
	m := map[string]Kind{}
	add := func(k Kind, names ...string) {
		for _, n := range names {
			m[n] = k
		}
	}
	add(Read, "VariableShowStmt", "ListenStmt", "UnlistenStmt", "ClosePortalStmt",
		"FetchStmt", "ConstraintsSetStmt")
	add(Write, "NotifyStmt", "LockStmt", "TruncateStmt",
		// REFRESH replaces the stored rows by running the view's query.
		"RefreshMatViewStmt")
	// Who may do what, and as whom.
	add(Privilege, "GrantStmt", "GrantRoleStmt", "AlterDefaultPrivilegesStmt",
		"CreateRoleStmt", "AlterRoleStmt", "AlterRoleSetStmt", "DropRoleStmt",
		"CreatePolicyStmt", "AlterPolicyStmt", "CreateUserMappingStmt",
		"AlterUserMappingStmt", "DropUserMappingStmt", "SecLabelStmt",
		"AlterOwnerStmt", "ReassignOwnedStmt", "DropOwnedStmt")
	// The server, its databases, storage, replication and installed code.
	add(Admin, "VacuumStmt", "CheckPointStmt", "ReindexStmt", "ClusterStmt",
		"AlterSystemStmt", "CreatedbStmt", "AlterDatabaseStmt",
		"AlterDatabaseRefreshCollStmt", "AlterDatabaseSetStmt", "DropdbStmt",
		"CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterTableSpaceOptionsStmt",
		"AlterTableMoveAllStmt", "CreateExtensionStmt", "AlterExtensionStmt",
		"AlterExtensionContentsStmt", "CreateSubscriptionStmt", "AlterSubscriptionStmt",
		"DropSubscriptionStmt", "CreatePublicationStmt", "AlterPublicationStmt",
		"CreateEventTrigStmt", "AlterEventTrigStmt", "CreatePLangStmt", "CreateFdwStmt",
		"AlterFdwStmt", "CreateForeignServerStmt", "AlterForeignServerStmt",
		"CreateAmStmt", "CreateTransformStmt")
	add(Schema, "CreateSchemaStmt", "ReplicaIdentityStmt", "AlterCollationStmt",
		"AlterDomainStmt", "CreateStmt", "CreateForeignTableStmt", "ImportForeignSchemaStmt",
		"CreateTrigStmt", "CreateSeqStmt", "AlterSeqStmt", "DefineStmt", "CreateDomainStmt",
		"CreateOpClassStmt", "CreateOpFamilyStmt", "AlterOpFamilyStmt", "DropStmt",
		"CommentStmt", "IndexStmt", "CreateStatsStmt", "AlterStatsStmt",
		"CreateFunctionStmt", "AlterFunctionStmt", "RenameStmt", "AlterObjectDependsStmt",
		"AlterObjectSchemaStmt", "AlterOperatorStmt", "AlterTypeStmt", "RuleStmt",
		"CompositeTypeStmt", "CreateEnumStmt", "CreateRangeStmt", "AlterEnumStmt",
		"ViewStmt", "CreateCastStmt", "CreateConversionStmt", "AlterTSDictionaryStmt",
		"AlterTSConfigurationStmt")
	return m
}()

// utilityKind classifies the statements without special rules. Their kind is
// already one that needs review by default, so only the relations they name
// are collected; the functions in their definitions are not run by them.
func utilityKind(n *pg.Node, w *pgWalk) (Kind, string) {
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("node"))
	if fd == nil || fd.Message() == nil {
		return Unknown, "empty statement node"
	}
	name := string(fd.Message().Name())
	k, ok := utilityKinds[name]
	if !ok {
		return Unknown, fmt.Sprintf("statement type %s is not classified", name)
	}
	w.objectsOf(n)
	if d := n.GetDropStmt(); d != nil {
		w.objects = append(w.objects, dropNames(d)...)
	}
	return k, ""
}

// dropNames lists the relations a DROP TABLE/VIEW/SEQUENCE/INDEX names; they
// are name lists there, not RangeVars.
func dropNames(d *pg.DropStmt) []string {
	switch d.RemoveType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
		pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_INDEX, pg.ObjectType_OBJECT_FOREIGN_TABLE:
	default:
		return nil
	}
	var out []string
	for _, o := range d.Objects {
		if l := o.GetList(); l != nil {
			out = append(out, nameOf(l.Items))
		}
	}
	return out
}

// objectsOf collects the relations n names without its expressions.
func (w *pgWalk) objectsOf(n *pg.Node) {
	ow := pgWalk{objectsOnly: true}
	ow.node(n)
	w.objects = append(w.objects, ow.objects...)
}
