# Rotation host script for SQL Server: the contract is docs/host-contract.md.
# The SSM agent runs it as SYSTEM; it administers SQL Server with Windows authentication, or as
# the master secret's SQL Server login with alternating users.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

function Write-RotatorError([string]$Message) {
    $clean = ($Message -replace '[\x00-\x1f\x7f]', ' ')
    if ($clean.Length -gt 400) { $clean = $clean.Substring(0, 400) }
    [Console]::Error.WriteLine('rotator: ' + $clean)
}

function Get-FirstLine([string]$Text) {
    if ($null -eq $Text) { return '' }
    foreach ($line in ($Text -split "`r?`n")) {
        if ($line.Trim().Length -gt 0) { return $line.Trim() }
    }
    return ''
}

# Anything unforeseen still ends with an explicit exit code and one line, never a password.
trap {
    Write-RotatorError ('unexpected error: ' + $_.Exception.GetType().FullName)
    exit 6
}

# ---- parameters (exported by the agent as SSM_<Name>) ----------------------------------
$action = [string]$env:SSM_Action
$secretId = [string]$env:SSM_SecretId
$versionId = [string]$env:SSM_VersionId
$pinnedLogin = [string]$env:SSM_Login

function Test-Parameter([string]$Value, [string]$Pattern) {
    # .NET's '$' also matches before a final newline: refuse line breaks outright.
    if ($Value.IndexOfAny([char[]]"`r`n") -ge 0) { return $false }
    return [regex]::IsMatch($Value, $Pattern, [System.Text.RegularExpressions.RegexOptions]::CultureInvariant)
}

$reAction = '^(set|verify)$'
$reSecretId = '^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$'
$reVersionId = '^[A-Za-z0-9-]{32,64}$'
if (-not (Test-Parameter $action $reAction)) {
    Write-RotatorError "parameter Action is missing or does not match $reAction"
    exit 2
}
if (-not (Test-Parameter $secretId $reSecretId)) {
    Write-RotatorError "parameter SecretId is missing or does not match $reSecretId"
    exit 2
}
if (-not (Test-Parameter $versionId $reVersionId)) {
    Write-RotatorError "parameter VersionId is missing or does not match $reVersionId"
    exit 2
}
$reLogin = '^[A-Za-z0-9_.@+=-]{0,128}$'
if (-not (Test-Parameter $pinnedLogin $reLogin)) {
    Write-RotatorError "parameter Login does not match $reLogin"
    exit 2
}
$region = ($secretId -split ':')[3]

# ---- the secret version ------------------------------------------------------------------
# Whether a JSON text has an object with two members of one name: 'duplicate', 'ok', or 'malformed'
# when it is not JSON this scanner can follow. Names are compared after their escapes are decoded
# and ignoring case, as PowerShell looks a property up: ConvertFrom-Json keeps one of two such members
# (which one differs between Windows PowerShell 5.1 and PowerShell 7, and from what python3 reads on
# Linux), so a secret must never hold two.
function Test-JsonMemberNames([string]$Json) {
    $objects = New-Object System.Collections.Stack
    $expectName = $false
    $i = 0
    $length = $Json.Length
    while ($i -lt $length) {
        $code = [int]$Json[$i]
        if ($code -eq 34) {
            $text = New-Object System.Text.StringBuilder
            $i++
            while ($true) {
                if ($i -ge $length) { return 'malformed' }
                $code = [int]$Json[$i]
                if ($code -eq 34) { break }
                if ($code -eq 92) {
                    $i++
                    if ($i -ge $length) { return 'malformed' }
                    $escape = [int]$Json[$i]
                    if ($escape -eq 117) {
                        if ($i + 4 -ge $length) { return 'malformed' }
                        $hex = $Json.Substring($i + 1, 4)
                        if ($hex -notmatch '^[0-9A-Fa-f]{4}$') { return 'malformed' }
                        [void]$text.Append([char][Convert]::ToInt32($hex, 16))
                        $i += 4
                    } elseif ($escape -eq 98) { [void]$text.Append([char]8)
                    } elseif ($escape -eq 102) { [void]$text.Append([char]12)
                    } elseif ($escape -eq 110) { [void]$text.Append([char]10)
                    } elseif ($escape -eq 114) { [void]$text.Append([char]13)
                    } elseif ($escape -eq 116) { [void]$text.Append([char]9)
                    } elseif ($escape -eq 34 -or $escape -eq 92 -or $escape -eq 47) { [void]$text.Append([char]$escape)
                    } else { return 'malformed' }
                } else {
                    [void]$text.Append([char]$code)
                }
                $i++
            }
            if ($expectName) {
                if (-not $objects.Peek().Add($text.ToString())) { return 'duplicate' }
                $expectName = $false
            }
        } elseif ($code -eq 123) {
            $objects.Push((New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)))
            $expectName = $true
        } elseif ($code -eq 91) {
            $objects.Push($null)
            $expectName = $false
        } elseif ($code -eq 125 -or $code -eq 93) {
            if ($objects.Count -eq 0) { return 'malformed' }
            [void]$objects.Pop()
            $expectName = $false
        } elseif ($code -eq 44) {
            if ($objects.Count -eq 0) { return 'malformed' }
            $expectName = ($null -ne $objects.Peek())
        }
        $i++
    }
    if ($objects.Count -ne 0) { return 'malformed' }
    return 'ok'
}

# One version of a secret (by VersionId, else by stage), parsed; $What names it in errors.
function Read-Secret([string]$Id, [string]$VersionId, [string]$Stage, [string]$What) {
    $secretRegion = ($Id -split ':')[3]
    $selector = @('--version-stage', $Stage)
    if ($VersionId.Length -gt 0) { $selector = @('--version-id', $VersionId) }
    $secretString = $null
    if ($null -ne (Get-Command -Name 'Get-SECSecretValue' -ErrorAction SilentlyContinue)) {
        try {
            if ($VersionId.Length -gt 0) {
                $response = Get-SECSecretValue -SecretId $Id -VersionId $VersionId -Region $secretRegion
            } else {
                $response = Get-SECSecretValue -SecretId $Id -VersionStage $Stage -Region $secretRegion
            }
            $secretString = $response.SecretString
            $script:readStages = @($response.VersionStages)
        } catch {
            Write-RotatorError ("$What cannot be read: " + (Get-FirstLine $_.Exception.Message))
            exit 4
        }
    } elseif ($null -ne (Get-Command -Name 'aws' -CommandType Application -ErrorAction SilentlyContinue)) {
        $ErrorActionPreference = 'Continue'
        $awsOutput = & aws secretsmanager get-secret-value --region $secretRegion --secret-id $Id @selector --query '[VersionStages, SecretString]' --output json 2>$null
        $awsStatus = $LASTEXITCODE
        $ErrorActionPreference = 'Stop'
        if ($awsStatus -ne 0) {
            Write-RotatorError "$What cannot be read (aws exited with $awsStatus)"
            exit 4
        }
        # The CLI's own JSON: [stages, the SecretString as one JSON string].
        try {
            $envelope = ($awsOutput | ForEach-Object { [string]$_ }) -join "`n" | ConvertFrom-Json
        } catch {
            Write-RotatorError "$What cannot be read from the AWS CLI's answer"
            exit 4
        }
        $script:readStages = @($envelope[0])
        $secretString = [string]$envelope[1]
    } else {
        Write-RotatorError 'neither AWS Tools for PowerShell (Get-SECSecretValue) nor the AWS CLI (aws) is installed'
        exit 7
    }

    # Before ConvertFrom-Json, whose handling of a repeated name differs between versions.
    $names = Test-JsonMemberNames ([string]$secretString)
    if ($names -eq 'duplicate') {
        Write-RotatorError "$What holds an object with two members of one name (compared ignoring case)"
        exit 4
    }
    if ($names -ne 'ok') {
        Write-RotatorError 'the secret value is not valid JSON'
        exit 4
    }
    try {
        $parsed = $secretString | ConvertFrom-Json
    } catch {
        # The parser's message may quote the secret: say nothing more.
        Write-RotatorError 'the secret value is not valid JSON'
        exit 4
    }
    if ($null -eq $parsed -or $parsed -isnot [System.Management.Automation.PSCustomObject]) {
        Write-RotatorError 'the secret value is not a JSON object'
        exit 4
    }
    return $parsed
}

# ---- one command for this secret at a time ----------------------------------------------------
# From reading the version to the result line, as on Linux (docs/THREAT-MODEL.md): two commands for
# one secret (two copies of a step, a restore racing a late set) must not interleave. The lock is a
# file held open without sharing, in a directory that SYSTEM or Administrators own.
function Enter-SecretLock([string]$Id) {
    $directory = Join-Path ([Environment]::GetFolderPath('CommonApplicationData')) 'rotator'
    $trusted = @('NT AUTHORITY\SYSTEM', 'BUILTIN\Administrators')
    if (-not (Test-Path -LiteralPath $directory)) {
        [void](New-Item -ItemType Directory -Path $directory)
        $acl = New-Object System.Security.AccessControl.DirectorySecurity
        $acl.SetAccessRuleProtection($true, $false)
        foreach ($who in $trusted) {
            $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
        }
        Set-Acl -LiteralPath $directory -AclObject $acl
    }
    $item = Get-Item -LiteralPath $directory -Force
    if (-not $item.PSIsContainer -or ($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -or
        $trusted -notcontains (Get-Acl -LiteralPath $directory).Owner) {
        Write-RotatorError "the lock directory $directory is not a directory that SYSTEM or Administrators own"
        exit 6
    }
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $hash = -join ($sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($Id)) | ForEach-Object { $_.ToString('x2') })
    $path = Join-Path $directory ($hash + '.lock')
    $until = [DateTime]::UtcNow.AddSeconds(100)
    while ($true) {
        try {
            return [System.IO.File]::Open($path, 'OpenOrCreate', 'ReadWrite', 'None')
        } catch [System.IO.IOException] {
            if ([DateTime]::UtcNow -gt $until) {
                Write-RotatorError 'another command for this secret held the host lock for 100 s'
                exit 6
            }
            Start-Sleep -Milliseconds 250
        }
    }
}
$secretLock = Enter-SecretLock $secretId

$readStages = @()
$secret = Read-Secret $secretId $versionId '' 'the secret version'
# A set for a version that lost its label (the rollback of another copy of the step removed it, or
# the rotation finished) changes nothing: no host may end on a password no label holds.
if ($action -eq 'set' -and $readStages -notcontains 'AWSPENDING' -and $readStages -notcontains 'AWSCURRENT') {
    Write-RotatorError 'the version is neither AWSPENDING nor AWSCURRENT any more (the rotation was finished or rolled back without this command), so nothing was changed'
    exit 8
}

# A text field of $From (the secret version unless another is given).
function Get-SecretText([string]$Name, [string]$Default, [int]$Limit, $From = $secret) {
    $property = $From.PSObject.Properties[$Name]
    $value = $null
    if ($null -ne $property) { $value = $property.Value }
    if (($null -eq $value -or ($value -is [string] -and $value.Length -eq 0)) -and $Default.Length -gt 0) { $value = $Default }
    if ($null -eq $value) {
        Write-RotatorError "the secret JSON lacks the field '$Name'"
        exit 4
    }
    if ($value -isnot [string] -or $value.Length -eq 0) {
        Write-RotatorError "the secret field '$Name' is not a non-empty string"
        exit 4
    }
    if ($value -match '[\x00-\x1f\x7f]') {
        Write-RotatorError "the secret field '$Name' contains control characters"
        exit 4
    }
    if ($value.Length -gt $Limit) {
        Write-RotatorError "the secret field '$Name' is longer than $Limit characters"
        exit 4
    }
    return $value
}

$username = Get-SecretText 'username' '' 128
# The login the stack pins (the document's Login parameter): a version naming another changes nothing.
if ($action -eq 'set' -and $pinnedLogin.Length -gt 0 -and $username -cne $pinnedLogin -and $username -cne ($pinnedLogin + '_clone')) {
    Write-RotatorError "the version names the login '$username', but this stack rotates only '$pinnedLogin' (and '${pinnedLogin}_clone')"
    exit 3
}
$password = Get-SecretText 'password' '' 128
$dbname = Get-SecretText 'dbname' 'master' 128
$port = 1433
$portProperty = $secret.PSObject.Properties['port']
if ($null -ne $portProperty -and $null -ne $portProperty.Value -and [string]$portProperty.Value -ne '') {
    $portText = [string]$portProperty.Value
    if ($portProperty.Value -is [bool] -or $portText -notmatch '^[0-9]{1,5}$') {
        Write-RotatorError "the secret field 'port' is not a TCP port number"
        exit 4
    }
    $port = [int]$portText
}
if ($port -lt 1 -or $port -gt 65535) {
    Write-RotatorError "the secret field 'port' is not a TCP port number"
    exit 4
}
# Alternating users when the secret names a master secret (docs/host-contract.md).
$masterArn = ''
if ($null -ne $secret.PSObject.Properties['masterarn']) {
    $masterArn = Get-SecretText 'masterarn' '' 2048
    if (-not (Test-Parameter $masterArn $reSecretId)) {
        Write-RotatorError "the secret field 'masterarn' is not the ARN of a secret"
        exit 4
    }
}

# ---- SQL Server --------------------------------------------------------------------------
Add-Type -AssemblyName System.Data
$dataSource = 'tcp:127.0.0.1,' + $port

function Find-SqlException($ErrorRecord) {
    $ex = $ErrorRecord.Exception
    while ($null -ne $ex -and $ex -isnot [System.Data.SqlClient.SqlException]) { $ex = $ex.InnerException }
    return $ex
}

# What went wrong in a SQL call, for one line of error output.
function Get-SqlErrorDetail($ErrorRecord) {
    $sqlError = Find-SqlException $ErrorRecord
    if ($null -eq $sqlError) { return 'unexpected error ' + $ErrorRecord.Exception.GetType().FullName }
    return 'error ' + $sqlError.Number + ': ' + (Get-FirstLine $sqlError.Message)
}

# A connection to $Database, with SQL authentication as $Name when given, else with Windows
# authentication as this process (SYSTEM). No pooling: a pooled connection opened with an older
# password must not answer for a new one.
function New-SqlConnection([string]$Database, [string]$Name, [string]$LoginPassword) {
    $builder = New-Object System.Data.SqlClient.SqlConnectionStringBuilder
    $builder['Data Source'] = $dataSource
    $builder['Initial Catalog'] = $Database
    $builder['Integrated Security'] = ($Name.Length -eq 0)
    $builder['Pooling'] = $false
    $builder['Connect Timeout'] = 15
    $builder['Application Name'] = 'rotator'
    if ($Name.Length -eq 0) { return New-Object System.Data.SqlClient.SqlConnection($builder.ConnectionString) }
    $securePassword = New-Object System.Security.SecureString
    foreach ($character in $LoginPassword.ToCharArray()) { $securePassword.AppendChar($character) }
    $securePassword.MakeReadOnly()
    $credential = New-Object System.Data.SqlClient.SqlCredential($Name, $securePassword)
    return New-Object System.Data.SqlClient.SqlConnection($builder.ConnectionString, $credential)
}

# Log in as the version's login with its password. 0 accepted, 5 refused, 6 unreachable.
function Test-Login {
    $connection = New-SqlConnection $dbname $username $password
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = 'SELECT 1'
        [void]$command.ExecuteScalar()
        $script:loginError = ''
        return 0
    } catch {
        $sqlError = Find-SqlException $_
        if ($null -eq $sqlError) {
            $script:loginError = Get-FirstLine $_.Exception.Message
            return 6
        }
        $script:loginError = 'error ' + $sqlError.Number + ': ' + (Get-FirstLine $sqlError.Message)
        # 18456 login failed, 18486 locked out, 18487/18488 password expired or must change,
        # 4060 cannot open the database.
        if (@(18456, 18486, 18487, 18488, 4060) -contains $sqlError.Number) { return 5 }
        return 6
    } finally {
        $connection.Dispose()
    }
}

# Ends the script unless Test-Login's status says the login was accepted.
function Assert-LoginAccepted([int]$Status) {
    if ($Status -eq 5) {
        Write-RotatorError ("SQL Server refused the login '$username' with this password: " + $loginError)
        exit 5
    }
    if ($Status -ne 0) {
        Write-RotatorError ("SQL Server is not reachable on 127.0.0.1,${port}: " + $loginError)
        exit 6
    }
}

# The administrator: SYSTEM with Windows authentication, or with alternating users the master
# secret's SQL Server login (Use-MasterLogin).
$adminName = ''
$adminPassword = ''
$administrator = 'SYSTEM with Windows authentication'

# Runs $Sql as the administrator in master with @login and @partner (AWSCURRENT's login with
# alternating users, or the login a check is about) as bound parameters, and @password only when
# asked (WithPassword): a trace or an Extended Events session on rpc_completed records every bound
# value, so the password goes only to the command that sets it. Returns its first value.
function Invoke-Admin([string]$Sql, [string]$Partner = '', [bool]$WithPassword = $false) {
    $connection = New-SqlConnection 'master' $adminName $adminPassword
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Sql
        $command.CommandTimeout = 60
        $bound = [ordered]@{ '@login' = $username; '@partner' = $Partner }
        if ($WithPassword) { $bound['@password'] = $password }
        foreach ($name in $bound.Keys) {
            [void]$command.Parameters.Add($name, [System.Data.SqlDbType]::NVarChar, 4000)
            $command.Parameters[$name].Value = $bound[$name]
        }
        return $command.ExecuteScalar()
    } finally {
        $connection.Dispose()
    }
}

# Invoke-Admin, ending the script with exit 6 and $What when SQL Server refuses.
function Invoke-AdminOrFail([string]$What, [string]$Sql, [string]$Partner = '', [bool]$WithPassword = $false) {
    try {
        return Invoke-Admin $Sql $Partner $WithPassword
    } catch {
        Write-RotatorError ("${What} (as $administrator): " + (Get-SqlErrorDetail $_))
        exit 6
    }
}

$sqlLoginCountSql = "SELECT COUNT(*) FROM sys.sql_logins WHERE name = @login"

# What makes the login in @partner an administrator, '' when nothing does: membership (direct or
# through other server roles) in sysadmin or securityadmin, or CONTROL SERVER, ALTER ANY LOGIN or
# IMPERSONATE ANY LOGIN granted to it, to a role it is in or to public. An administrator that
# cannot see other logins' roles and permissions cannot tell: an error (exit 6), never ''.
$privilegedSql = @'
IF NOT (HAS_PERMS_BY_NAME(NULL, NULL, N'VIEW ANY DEFINITION') = 1 OR IS_SRVROLEMEMBER(N'securityadmin') = 1
        OR IS_SRVROLEMEMBER(N'sysadmin') = 1)
BEGIN
    RAISERROR(N'cannot see the server roles and permissions of other logins (needs VIEW ANY DEFINITION or securityadmin)', 16, 1);
    RETURN;
END;
DECLARE @principal int = SUSER_ID(@partner);
IF @principal IS NULL
BEGIN
    RAISERROR(N'the login to check is not visible', 16, 1);
    RETURN;
END;
WITH held(principal_id) AS (
    SELECT @principal
    UNION ALL
    SELECT principal_id FROM sys.server_principals WHERE name = N'public' AND type = 'R'
    UNION ALL
    SELECT m.role_principal_id FROM sys.server_role_members m JOIN held h ON m.member_principal_id = h.principal_id),
reasons(reason) AS (
    SELECT N'member of sysadmin' WHERE IS_SRVROLEMEMBER(N'sysadmin', @partner) = 1
    UNION
    SELECT N'member of ' + r.name FROM held h JOIN sys.server_principals r ON r.principal_id = h.principal_id
     WHERE r.name IN (N'sysadmin', N'securityadmin') AND r.type = 'R'
    UNION
    SELECT p.permission_name + CASE WHEN p.grantee_principal_id = @principal THEN N'' ELSE N' through ' + g.name END
      FROM sys.server_permissions p JOIN sys.server_principals g ON g.principal_id = p.grantee_principal_id
     WHERE p.grantee_principal_id IN (SELECT principal_id FROM held) AND p.class = 100 AND p.state IN ('G', 'W')
       AND p.permission_name IN (N'CONTROL SERVER', N'ALTER ANY LOGIN', N'IMPERSONATE ANY LOGIN'))
SELECT ISNULL(STUFF((SELECT N'; ' + reason FROM reasons ORDER BY reason FOR XML PATH(''), TYPE).value('.', 'nvarchar(max)'), 1, 2, N''), N'');
'@

# Ends the script (exit 3) before anything changes when $Name holds an administrator's rights:
# whoever can write the secret must not be able to make this host change, or clone, an administrator.
function Assert-NotPrivileged([string]$Name) {
    $reasons = [string](Invoke-AdminOrFail "whether '$Name' is privileged could not be read" $privilegedSql $Name)
    if ($reasons.Length -gt 0) {
        Write-RotatorError "the login '$Name' is privileged ($reasons): rotator refuses to change or clone an administrator"
        exit 3
    }
}

# The version's password on its existing SQL login, then proven by logging in.
function Set-LoginPassword {
    $count = Invoke-AdminOrFail 'SQL Server could not be administered' $sqlLoginCountSql
    if ([int]$count -ne 1) {
        Write-RotatorError "the SQL login '$username' does not exist"
        exit 3
    }
    Assert-NotPrivileged $username
    $alter = @'
DECLARE @sql nvarchar(max) = N'ALTER LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''');
IF @sql IS NULL
BEGIN
    RAISERROR(N'the login name or the password is too long for QUOTENAME', 16, 1);
    RETURN;
END;
EXEC sys.sp_executesql @sql;
'@
    [void](Invoke-AdminOrFail "the password of '$username' could not be changed" $alter '' $true)
    Assert-LoginAccepted (Test-Login)
}

# ---- alternating users -------------------------------------------------------------------------
# Both logins are SQL Server logins, like the login of single user. The master secret holds a SQL
# Server login (SQL authentication: SYSTEM cannot sign in as another Windows account) that
# administers them instead of SYSTEM.
function Use-MasterLogin {
    $master = Read-Secret $masterArn '' 'AWSCURRENT' 'the master secret'
    $name = Get-SecretText 'username' '' 128 $master
    if ($name.Contains('\')) {
        Write-RotatorError "the master login '$name' is a Windows account; the master secret must hold a SQL Server login"
        exit 4
    }
    $script:adminPassword = Get-SecretText 'password' '' 128 $master
    $script:adminName = $name
    $script:administrator = "the master login '$name'"
}

# The login with this version's password if it is missing (with the partner's default database and
# password policy). Returns 1 when it created the login. The only alternating-users command that is
# given the password.
$createLoginSql = @'
DECLARE @sql nvarchar(max), @created int = 0;
IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = @login)
BEGIN
    SELECT @sql = N'CREATE LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''')
               + N', DEFAULT_DATABASE = ' + QUOTENAME(l.default_database_name)
               + N', CHECK_POLICY = ' + CASE WHEN l.is_policy_checked = 1 THEN N'ON' ELSE N'OFF' END
               + N', CHECK_EXPIRATION = ' + CASE WHEN l.is_expiration_checked = 1 THEN N'ON' ELSE N'OFF' END
      FROM sys.sql_logins l WHERE l.name = @partner;
    IF @sql IS NULL
    BEGIN
        RAISERROR(N'the login name or the password is too long for QUOTENAME', 16, 1);
        RETURN;
    END;
    -- 15025: another run of this step created it first.
    BEGIN TRY
        EXEC sys.sp_executesql @sql;
        SET @created = 1;
    END TRY
    BEGIN CATCH
        IF ERROR_NUMBER() <> 15025
        BEGIN
            THROW;
        END;
    END CATCH;
END;
SELECT @created;
'@

# Exactly the partner's server roles for the login, and in every database where either has a user,
# a user for the login with exactly the partner's database roles.
$copyRolesSql = @'
DECLARE @sql nvarchar(max), @db sysname, @inDatabase nvarchar(600);
DECLARE roles CURSOR LOCAL FAST_FORWARD FOR
    SELECT N'ALTER SERVER ROLE ' + QUOTENAME(r.name) + N' ADD MEMBER ' + QUOTENAME(@login)
      FROM sys.server_role_members m JOIN sys.server_principals r ON r.principal_id = m.role_principal_id
     WHERE m.member_principal_id = SUSER_ID(@partner)
       AND NOT EXISTS (SELECT 1 FROM sys.server_role_members o WHERE o.role_principal_id = m.role_principal_id AND o.member_principal_id = SUSER_ID(@login))
    UNION ALL
    SELECT N'ALTER SERVER ROLE ' + QUOTENAME(r.name) + N' DROP MEMBER ' + QUOTENAME(@login)
      FROM sys.server_role_members m JOIN sys.server_principals r ON r.principal_id = m.role_principal_id
     WHERE m.member_principal_id = SUSER_ID(@login)
       AND NOT EXISTS (SELECT 1 FROM sys.server_role_members o WHERE o.role_principal_id = m.role_principal_id AND o.member_principal_id = SUSER_ID(@partner));
OPEN roles;
FETCH NEXT FROM roles INTO @sql;
WHILE @@FETCH_STATUS = 0
BEGIN
    EXEC sys.sp_executesql @sql;
    FETCH NEXT FROM roles INTO @sql;
END;
CLOSE roles;
DEALLOCATE roles;
DECLARE @copyDatabase nvarchar(max) = N'
DECLARE @sql nvarchar(max);
DECLARE @source sysname = (SELECT name FROM sys.database_principals WHERE sid = SUSER_SID(@partner));
DECLARE @target sysname = (SELECT name FROM sys.database_principals WHERE sid = SUSER_SID(@login));
IF @source IS NULL AND @target IS NULL RETURN;
IF @target IS NULL
BEGIN
    SET @target = @login;
    SET @sql = N''CREATE USER '' + QUOTENAME(@target) + N'' FOR LOGIN '' + QUOTENAME(@login);
    EXEC sys.sp_executesql @sql;
END;
DECLARE roles CURSOR LOCAL FAST_FORWARD FOR
    SELECT N''ALTER ROLE '' + QUOTENAME(USER_NAME(m.role_principal_id)) + N'' ADD MEMBER '' + QUOTENAME(@target)
      FROM sys.database_role_members m
     WHERE m.member_principal_id = DATABASE_PRINCIPAL_ID(@source)
       AND NOT EXISTS (SELECT 1 FROM sys.database_role_members o WHERE o.role_principal_id = m.role_principal_id AND o.member_principal_id = DATABASE_PRINCIPAL_ID(@target))
    UNION ALL
    SELECT N''ALTER ROLE '' + QUOTENAME(USER_NAME(m.role_principal_id)) + N'' DROP MEMBER '' + QUOTENAME(@target)
      FROM sys.database_role_members m
     WHERE m.member_principal_id = DATABASE_PRINCIPAL_ID(@target)
       AND NOT EXISTS (SELECT 1 FROM sys.database_role_members o WHERE o.role_principal_id = m.role_principal_id AND o.member_principal_id = DATABASE_PRINCIPAL_ID(@source));
OPEN roles;
FETCH NEXT FROM roles INTO @sql;
WHILE @@FETCH_STATUS = 0
BEGIN
    EXEC sys.sp_executesql @sql;
    FETCH NEXT FROM roles INTO @sql;
END;
CLOSE roles;
DEALLOCATE roles;
';
DECLARE databases CURSOR LOCAL FAST_FORWARD FOR
    SELECT name FROM sys.databases WHERE state = 0 AND is_read_only = 0 AND HAS_DBACCESS(name) = 1;
OPEN databases;
FETCH NEXT FROM databases INTO @db;
WHILE @@FETCH_STATUS = 0
BEGIN
    SET @inDatabase = QUOTENAME(@db) + N'.sys.sp_executesql';
    EXEC @inDatabase @copyDatabase, N'@login sysname, @partner sysname', @login = @login, @partner = @partner;
    FETCH NEXT FROM databases INTO @db;
END;
CLOSE databases;
DEALLOCATE databases;
'@

# Alternating users' part of set: as the master login, the version's login created if missing and
# given the grants of the login AWSCURRENT names (the one applications hold, never changed here).
# When the version names that login itself (a restore), no grant is touched. Returns whether it
# created the login.
function Copy-PartnerLogin {
    Use-MasterLogin
    $current = Read-Secret $secretId '' 'AWSCURRENT' 'the AWSCURRENT version'
    $partner = Get-SecretText 'username' '' 128 $current
    if ($partner -eq $username) { return $false }
    $partnerLogins = Invoke-AdminOrFail 'SQL Server could not be administered' "SELECT COUNT(*) FROM sys.sql_logins WHERE name = @partner" $partner
    if ([int]$partnerLogins -ne 1) {
        Write-RotatorError "the SQL login '$partner' (AWSCURRENT) does not exist, so there are no grants to copy"
        exit 3
    }
    # Neither the login applications hold nor an existing login of this version may be an administrator.
    Assert-NotPrivileged $partner
    $logins = Invoke-AdminOrFail 'SQL Server could not be administered' "SELECT COUNT(*) FROM sys.server_principals WHERE name = @login"
    if ([int]$logins -ne 0) { Assert-NotPrivileged $username }
    $created = Invoke-AdminOrFail "the login '$username' could not be created" $createLoginSql $partner $true
    [void](Invoke-AdminOrFail "the login '$username' could not be given the roles of '$partner'" $copyRolesSql $partner)
    return ([int]$created -eq 1)
}

# ---- set or verify -------------------------------------------------------------------------------
$loginError = ''
$status = Test-Login
if ($action -eq 'verify') {
    Assert-LoginAccepted $status
    $outcome = 'verified'
} else {
    if ($status -ne 5) { Assert-LoginAccepted $status }
    $outcome = 'unchanged'
    if ($masterArn.Length -gt 0) {
        if (Copy-PartnerLogin) { $outcome = 'changed' }
        $status = Test-Login
    }
    if ($status -eq 5) {
        Set-LoginPassword
        $outcome = 'changed'
    } else {
        Assert-LoginAccepted $status
    }
}
[Console]::Out.WriteLine('ROTATOR-RESULT action=' + $action + ' version=' + $versionId + ' outcome=' + $outcome)
exit 0
